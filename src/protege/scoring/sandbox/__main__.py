"""Print which isolation layers hold on this machine:  python -m protege.scoring.sandbox"""
from protege.scoring.sandbox.isolation import isolation

print(isolation().describe())
