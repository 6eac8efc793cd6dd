"""Stage audit: out-of-sample scores for every labelled face, and the labels they contradict.

Writes results/audit/label_issues.csv (the flagged faces, most suspect first), label_issues.png
(a contact sheet of the top suspects) and summary.json (counts). With audit.enabled false it
writes an empty list and says so: train.label_issues keep needs nothing from it.
"""


from facecls.atomic import write_json
from facecls.audit.issues import audit_summary, captions, issue_rows, rank_issues
from facecls.audit.out_of_sample import out_of_sample_scores
from facecls.audit.settings import audit_settings, audit_training_config
from facecls.data.label_issues import ISSUES_CSV, write_issues
from facecls.data.prepared import load_labelled
from facecls.errors import fail_cleanly
from facecls.evaluation.plots import plot_faces
from facecls.params import load_params

OUT = ISSUES_CSV.parent


@fail_cleanly
def main() -> None:
    params = load_params()
    settings = audit_settings(params)
    if not settings["enabled"]:
        write_issues(ISSUES_CSV, [])
        plot_faces(None, [], [], OUT / "label_issues.png", "Label audit", empty="audit.enabled is false")
        write_json(OUT / "summary.json", {"enabled": False})
        print("audit: off (audit.enabled false): no faces flagged")
        return
    config, data = audit_training_config(params), load_labelled("data/prepared")
    scores, cpu_seconds = out_of_sample_scores(data, config, settings["folds"], settings["seed"])
    ranked = rank_issues(data.labels, scores, data.part, settings["filter_by"], settings["rank_by"])
    write_issues(ISSUES_CSV, issue_rows(data, scores, ranked))
    shown = ranked[:settings["sheet"]]
    plot_faces(data.images, shown, captions(data, scores, shown), OUT / "label_issues.png",
               f"The {len(shown)} labels the audit finds most suspect, of {ranked.size:,} flagged among "
               f"{len(scores):,}\n(given label: 0 accessory, 1 none; score: out-of-sample P(label 1); "
               f"ranked by {settings['rank_by']})",
               empty="no label flagged")
    summary = audit_summary(data, scores, ranked, cpu_seconds)
    write_json(OUT / "summary.json", summary)
    print(f"audit: {summary['flagged']} of {summary['faces']} labels flagged (train {summary['flagged_train']}, "
          f"test {summary['flagged_test']}); out-of-sample AUC "
          f"{summary['out_of_sample_auc']:.4f}; {cpu_seconds:.0f} CPU s")


if __name__ == "__main__":
    main()
