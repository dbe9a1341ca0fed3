"""One training step of Mazur's worked example (seed 002), every number from the engine."""
from backprop import explain
from backprop.demos import mazur

step = explain(mazur.network(), [0.05, 0.10], [0.01, 0.99], lr=0.5)
print(f"E_total before the step: {step.E_total:.9f}")   # Mazur prints 0.298371109
print(f"E_total after the step:  {step.E_after:.9f}")
print(step.to_text().splitlines()[0])
