"""Rewrite docs/examples.md from the scripts in docs/examples/ and their output (run after changing one)."""
import subprocess, sys, tempfile
from pathlib import Path
root = Path(__file__).resolve().parents[1] / "docs" / "examples"
order = ["xor.py", "digits.py", "csv_to_predictions.py", "explain_step.py", "sklearn_pipeline.py"]
titles = {"xor.py": "XOR", "digits.py": "The digits: dense and convolutional",
          "csv_to_predictions.py": "A CSV file, from raw file to predictions",
          "explain_step.py": "Explain one step", "sklearn_pipeline.py": "In a scikit-learn Pipeline"}
parts = ["# Examples\n\n", "Short scripts, each run by the test suite (`tests/test_examples.py`), which checks that it\n"
         "still prints exactly the output shown here. They are in `docs/examples/`; run one with\n"
         "`python docs/examples/xor.py`.\n"]
for name in order:
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, str(root / name)], cwd=d, capture_output=True, text=True, check=True).stdout
    code = (root / name).read_text()
    parts.append(f"\n## {titles[name]}\n\n`docs/examples/{name}`\n\n```python\n{code}```\n\nprints\n\n```\n{out}```\n")
(root.parent / "examples.md").write_text("".join(parts))
