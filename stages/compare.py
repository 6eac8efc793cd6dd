"""Stage compare: results/summary.md, the variants' table sorted by held-out HTER."""

from facecls.atomic import write_text
from facecls.errors import fail_cleanly
from facecls.evaluation.summary import read_metrics, scored_names, summary_markdown
from facecls.params import load_params


@fail_cleanly
def main() -> None:
    table = summary_markdown(read_metrics("results/metrics", scored_names(load_params())))
    write_text("results/summary.md", table)
    print(table)


if __name__ == "__main__":
    main()
