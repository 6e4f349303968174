#!/usr/bin/python3
"""Table of scripts/experiments/gradient-losses.sh: reads OUT/train/<variant>/summary.json
and OUT/report/report.json and prints markdown.

usage: gradient_losses_table.py OUT
"""
import json
import os
import sys

GRADIENT_REPS = [("input-grad", "input gradients"), ("gradcam-weights", "Grad-CAM weights"),
                 ("param-grad", "head parameter gradients")]


def main(out):
    report = json.load(open(os.path.join(out, "report", "report.json")))
    rows = []
    for m in report["models"]:
        name = os.path.splitext(os.path.basename(m["checkpoint"]))[0]
        summary = json.load(open(os.path.join(out, "train", name, "summary.json")))
        epochs = summary["epochs"]
        per_epoch = sum(e["seconds"] for e in epochs) / len(epochs)
        terms = epochs[-1].get("terms", {})
        reps = m["representations"]
        rows.append([name, "%.2f" % (100 * epochs[-1]["test_acc"]), "%.2f" % (100 * m["accuracy"]),
                     "%.4f" % reps["input-grad"]["cos_sim"]]
                    + ["%.3f" % reps[r]["kmeans"]["ari"] for r, _ in GRADIENT_REPS]
                    + ["%.3f" % reps[r]["gmm"]["ari"] for r, _ in GRADIENT_REPS]
                    + ["%.0f" % per_epoch, ", ".join("%s %.4f" % kv for kv in sorted(terms.items())) or "-"])
    base = float(rows[0][-2]) if rows else 1.0
    head = (["variant", "test acc % (10 000)", "acc % (eval 1 000)", "Cos_Sim input-grad"]
            + ["KMeans ARI %s" % d for _, d in GRADIENT_REPS] + ["GMM ARI %s" % d for _, d in GRADIENT_REPS]
            + ["s / epoch", "last-epoch terms (weighted)"])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        r[-2] = "%s (%.1fx)" % (r[-2], float(r[-2]) / base)
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
