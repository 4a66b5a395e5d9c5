"""Print which isolation layers hold on this machine:  python -m protege.evaluate.sandbox"""
from protege.evaluate.sandbox.isolation import isolation

print(isolation().describe())
