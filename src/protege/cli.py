"""The `protege` command: a thin layer over protege.pipeline.

    protege demo                                  # TREC-6 on the embedded default model
    protege run configs/demo-trec6.yaml train.epochs=2
    protege generate|curate|train|eval|report CONFIG [key=value ...]   # run up to that stage
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from protege.errors import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Distil a small specialised model from a teacher.")

DEMO_CONFIG = Path(__file__).parent / "demo-trec6.yaml"


def _run(config: Optional[Path], overrides: List[str], until: str) -> None:
    from protege.config import load_config
    from protege.models.resolve import ModelNotFound
    from protege.pipeline import Pipeline

    try:
        pipeline = Pipeline(load_config(config, overrides))
        stage = pipeline.run(until)
    except (ConfigError, ModelNotFound) as e:
        typer.secho(str(e), fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if until == "report":
        typer.echo("\n" + (stage / "report.md").read_text())
    typer.echo(f"{until} output: {stage.path}")


def _stage_command(stage: str):
    def command(config: Path = typer.Argument(..., help="run config YAML"),
                overrides: List[str] = typer.Argument(None, help="key.path=value overrides")):
        _run(config, overrides or [], stage)

    command.__doc__ = f"Run the flow up to the {stage} stage (finished stages are reused)."
    return command


@app.command()
def demo(overrides: List[str] = typer.Argument(None, help="key.path=value overrides")):
    """Distil TREC-6 with the embedded default (SmolLM2-135M-Instruct) as teacher and student."""
    _run(DEMO_CONFIG, overrides or [], "report")


@app.command()
def run(config: Path = typer.Argument(..., help="run config YAML"),
        overrides: List[str] = typer.Argument(None, help="key.path=value overrides")):
    """Run the whole flow: generate, curate, train, eval, report."""
    _run(config, overrides or [], "report")


@app.command()
def score(predictions: Path = typer.Argument(..., help="JSONL of {id, prediction}"),
          task: str = typer.Option(..., "--task", help="built-in task name or task spec YAML")):
    """Score a file of predictions (from protege or any other tool) against the task's test set."""
    import json

    from protege.evaluate.score_file import score_predictions
    from protege.tasks.spec import load_task

    try:
        result = score_predictions(load_task(task), predictions)
    except ConfigError as e:
        typer.secho(str(e), fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(result, indent=2))


for _name in ["generate", "curate", "train", "eval", "report"]:
    app.command(name=_name)(_stage_command(_name))


if __name__ == "__main__":
    app()
