"""Stage compare: the results of the run, from every variant's figures.

results/summary.md (the table, sorted by out-of-fold HTER, with intervals and the chosen variant),
results/summary.json (what `dvc exp show` / `dvc metrics diff` compare) and results/summary.png
(out-of-fold and test HTER with their intervals per variant, the chosen one marked).
"""

from facecls.atomic import write_json, write_text
from facecls.errors import fail_cleanly
from facecls.evaluation.choice import by_oof_hter, chosen_variant, predict_variant, read_scored
from facecls.evaluation.plots import plot_intervals
from facecls.evaluation.summary import compared_figures, summary_markdown
from facecls.params import load_params

FIGURES = (("out of fold (chose the threshold and the variant)", "oof_hter"), ("test (reported)", "hter"))


@fail_cleanly
def main() -> None:
    params = load_params()
    choice = predict_variant(params)
    metrics = read_scored("results/metrics", params)
    chosen = chosen_variant(choice, metrics)
    plot_intervals([{"name": v, "marked": v == chosen,
                     "intervals": [{"label": label, "value": metrics[v][key], "low": metrics[v][f"{key}_ci95"][0],
                                    "high": metrics[v][f"{key}_ci95"][1]} for label, key in FIGURES]}
                    for v in by_oof_hter(metrics)],
                   "results/summary.png", "HTER with its 95 % interval (rows by out-of-fold HTER)", "HTER")
    write_json("results/summary.json", compared_figures(metrics, choice))
    table = summary_markdown(metrics, choice)
    write_text("results/summary.md", table)
    print(table)


if __name__ == "__main__":
    main()
