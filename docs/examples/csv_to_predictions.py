"""From a raw CSV file to predictions with the command line (run here through backprop.cli.main)."""
import contextlib
import csv
import io

from sklearn.datasets import load_wine

from backprop.cli import main

wine = load_wine()
with open("wine.csv", "w", newline="") as f:
    out = csv.writer(f)
    out.writerow([*wine.feature_names, "cultivar"])
    out.writerows([*row, f"class_{k}"] for row, k in zip(wine.data, wine.target))

summary = io.StringIO()
with contextlib.redirect_stdout(summary):  # train prints its summary; keep it for below
    main(["train", "wine.csv", "--target", "cultivar", "--quiet", "--out", "wine.safetensors"])
print(summary.getvalue().splitlines()[0])
main(["predict", "wine.safetensors", "wine.csv", "--out", "predictions.csv"])
with open("predictions.csv") as f:
    predicted = [row["cultivar"] for row in csv.DictReader(f)]
truth = [f"class_{k}" for k in wine.target]
print("rows predicted:", len(predicted))
print("training-set accuracy above 0.95:", sum(p == t for p, t in zip(predicted, truth)) / len(truth) > 0.95)
