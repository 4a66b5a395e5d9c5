"""The `protege` command: a thin layer over protege.pipeline.

    protege demo                                  # TREC-6 on the embedded default model
    protege run configs/demo-trec6.yaml train.epochs=2
    protege generate|curate|train|eval|report CONFIG [key=value ...]   # run up to that stage
    protege eval --model bundled:smollm2-135m-instruct --task gsm8k --shots 4 --limit 200
    protege score --task trec6 predictions.jsonl
    protege serve --model bundled:smollm2-135m-instruct --port 8000   # OpenAI-compatible HTTP API
    protege bench configs/bench-small.yaml [--executor ray]   # students x teachers x tasks, ranked
    protege train CONFIG --method kd              # logit distillation (settings under train.kd)
    protege student prune --from bundled:smollm2-135m-instruct --keep-layers 20   # a student sharing the tokenizer
    protege --precision fp32 run CONFIG           # any command: how local models compute (auto | fp32 | bf16)
    protege --device cuda:1 run CONFIG            # any command: where they compute (auto | cpu | cuda | cuda:N)
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import List, NoReturn, Optional

import typer

from protege.choices import ExecutorKind, ExportFormat, Importance, Precision, Scoring, Split
from protege.errors import ConfigError
from protege.store import REPORT_MD, SAMPLES
from protege.train import registry

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Distil a small specialised model from a teacher.")

DEMO_CONFIG = Path(__file__).parent / "demo-trec6.yaml"
PACKAGE_HELP = ("an installed package the sandboxed programs may import, e.g. numpy (repeatable; adds to the task "
                "spec's packages:)")


def fail(message: str) -> NoReturn:
    """A user's mistake: say what is wrong and what to change, in red, and exit with status 2 (no traceback)."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@contextmanager
def user_errors(*kinds: type[BaseException]):
    """The one error handler: a ConfigError, or an error of `kinds` (what the command knows to be the user's to
    fix), becomes its message and exit status 2; anything else is a bug and keeps its traceback."""
    try:
        yield
    except (ConfigError, *kinds) as e:
        fail(str(e))


THIRD_PARTY = r"(transformers|torch|peft|trl|accelerate|huggingface_hub)(\.|$)"


def quiet_third_party_warnings() -> None:
    """Deprecation notices the libraries address to protege's own code (e.g. transformers' `past_key_values` on
    every forward) are not for the user of a command; protege's own warnings and everything else still show.
    PROTEGE_SHOW_WARNINGS=1 keeps them all."""
    import os
    import warnings

    if os.environ.get("PROTEGE_SHOW_WARNINGS"):
        return
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=THIRD_PARTY)


@app.callback()
def main(precision: Optional[Precision] = typer.Option(
        None, "--precision",
        help="how local models compute, for every command: auto (bf16 on CPUs with AMX or AVX-512 BF16 and on "
             "GPUs, else fp32), fp32 or bf16. Default: $PROTEGE_PRECISION, else auto. A run config's `precision` "
             "wins over it."),
         device: Optional[str] = typer.Option(
        None, "--device", help="where local models compute, for every command: auto (the first GPU, else the CPU), "
                               "cpu, cuda or cuda:N. Default: $PROTEGE_DEVICE, else auto. A run config's `device` "
                               "wins over it.")):
    """Distil a small specialised model from a teacher."""
    import os

    from protege.models import device as devices
    from protege.models.precision import ENV

    quiet_third_party_warnings()
    if precision is not None:
        os.environ[ENV] = precision  # read by every model this process (and its Ray workers, subprocesses) loads
    if device is not None:
        try:
            devices.check_device(device, "--device")
        except ValueError as e:
            fail(str(e))
        os.environ[devices.ENV] = device


def _run(config: Optional[Path], overrides: List[str], until: str) -> None:
    from protege.config import load_config
    from protege.models.resolve import ModelNotFound
    from protege.pipeline import Pipeline

    from protege.models.openai_http import EndpointError
    from protege.scoring.sandbox import CodeExecutionNotAllowed
    from protege.synth.generate import BudgetReached
    from protege.train.cross_tokenizer import UnsupportedTokenizers
    from protege.train.kd_loss import TokenizerMismatch

    with user_errors(ModelNotFound, BudgetReached, EndpointError, TokenizerMismatch, UnsupportedTokenizers,
                     CodeExecutionNotAllowed):
        pipeline = Pipeline(load_config(config, overrides))
        stage = pipeline.run(until)
    if until == "report":
        typer.echo("\n" + (stage / REPORT_MD).read_text())
    typer.echo(f"{until} output: {stage.path}")
    failures = pipeline.gate_failures() if until in ("eval", "report") else []
    if failures:
        typer.secho("RUN FAILED: forgetting gate exceeded: " + "; ".join(failures), fg=typer.colors.RED, err=True)
        raise typer.Exit(3)


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
          task: str = typer.Option(..., "--task", help="built-in task name or task spec YAML"),
          allow_code_execution: bool = typer.Option(False, "--allow-code-execution",
                                                    help="run predicted code in the sandbox (code tasks)"),
          package: List[str] = typer.Option([], "--package", help=PACKAGE_HELP),
          records: Optional[Path] = typer.Option(None, "--records", help="also write per-item results here "
                                                 "(JSONL: id, metrics; code: status, reason, seconds)")):
    """Score a file of predictions (from protege or any other tool) against the task's test set."""
    import json

    from protege.scoring.sandbox import CodeExecutionNotAllowed
    from protege.evaluate.score_file import score_predictions

    with user_errors(CodeExecutionNotAllowed):
        result = score_predictions(_task_with_packages(task, package), predictions,
                                   allow_code_execution=allow_code_execution, records_path=records)
    typer.echo(json.dumps(result, indent=2))


@app.command(name="eval")
def eval_command(config: Optional[Path] = typer.Argument(None, help="run config YAML (runs the flow up to eval)"),
                 overrides: List[str] = typer.Argument(None, help="key.path=value overrides"),
                 model: Optional[str] = typer.Option(None, help="evaluate this model alone, e.g. "
                                                     "bundled:smollm2-135m-instruct or hf:path/to/model"),
                 task: Optional[str] = typer.Option(None, help="built-in task name or task spec YAML (with --model)"),
                 shots: int = typer.Option(0, help="few-shot examples from the seeds (per label for classification)"),
                 limit: Optional[int] = typer.Option(None, help="evaluate only the first N test items"),
                 split: Split = typer.Option("test", help="with --model: the test set (a final score, logged) or the "
                                             "task's validation split (to choose a model or setting)"),
                 scoring: Scoring = typer.Option("likelihood", help="classification: rank the label words by "
                                                 "likelihood, or generate and parse"),
                 allow_code_execution: bool = typer.Option(False, "--allow-code-execution",
                                                           help="run generated code in the sandbox (code tasks)"),
                 package: List[str] = typer.Option([], "--package", help=PACKAGE_HELP + " (with --model)"),
                 executor: ExecutorKind = typer.Option("local", help="with --model: score here, or on Ray workers "
                                                       "each holding the model (a run's eval uses executor.kind)"),
                 workers: int = typer.Option(2, min=1, help="Ray workers (with --executor ray)"),
                 runs_dir: Path = typer.Option(Path("runs"), help="where results go")):
    """Evaluate a run's models (with CONFIG), or one model on one task (with --model and --task)."""
    if model is None and task is None:
        if config is None:
            fail("give a run CONFIG, or --model and --task")
        _run(config, overrides or [], "eval")
        return
    if model is None or task is None or config is not None:
        fail("--model and --task go together, without a run CONFIG")
    from protege.config import ExecutorSettings

    _eval_model(model, task, shots, limit, scoring, allow_code_execution, runs_dir, package,
                ExecutorSettings(kind="ray", workers=workers) if executor == "ray" else None, split)


def _task_with_packages(task: str, packages: list[str]):
    """The task spec, with --package names added to its `packages:` (code tasks only)."""
    from protege.errors import ConfigError
    from protege.tasks.kinds import kind_of
    from protege.tasks.spec import load_task

    spec = load_task(task)
    if not packages:
        return spec
    if not kind_of(spec).EXECUTES_CODE:
        raise ConfigError("--package", [f"task {spec.name} is {spec.kind}, which runs no code; drop --package"])
    return spec.model_copy(update={"packages": sorted(set(spec.packages) | set(packages))})


def _eval_model(model, task, shots, limit, scoring, allow_code_execution, runs_dir, packages=(),
                executor=None, split="test") -> None:
    import json

    from protege.evaluate.model_eval import evaluate_model
    from protege.scoring.sandbox import CodeExecutionNotAllowed
    from protege.models.resolve import ModelNotFound

    with user_errors(ModelNotFound, CodeExecutionNotAllowed):
        results = evaluate_model(model, _task_with_packages(task, list(packages)), shots=shots, limit=limit,
                                 scoring=scoring, allow_code_execution=allow_code_execution, runs_dir=runs_dir,
                                 executor=executor, split=split)
    summary = results["summary"]
    metric = results["metric"]
    lo, hi = summary[f"{metric}_ci"]
    typer.echo(json.dumps(summary, indent=2, default=str))
    typer.echo(f"{results['task']} {metric} = {100 * summary[metric]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] "
               f"on {results[f'{split}_items']} {split} items; output: {results['path']}")


@app.command()
def baselines(model: str = typer.Option("bundled:smollm2-135m-instruct", help="the model to measure"),
              tasks: Optional[str] = typer.Option(None, help="comma-separated task names (default: all built-ins)"),
              limit: Optional[int] = typer.Option(100, help="first N test items per task (0: all)"),
              out: Path = typer.Option(Path("docs/baselines.md"), help="Markdown file to write"),
              runs_dir: Path = typer.Option(Path("runs"), help="where per-cell results go"),
              card: bool = typer.Option(False, "--card", help="also HumanEval and MBPP test in full, zero-shot, next "
                                        "to the pass@1 the model's card publishes"),
              card_only: bool = typer.Option(False, "--card-only", help="only the --card table: no limited cells "
                                             "(--limit is then not used; --tasks picks among the card's tasks)")):
    """Zero-shot and few-shot scores of a model on every built-in task (runs code in the sandbox); the model's
    section of the Markdown file is added or replaced, the rest kept."""
    from protege.evaluate.baselines_doc import write_baselines

    selected = f" --tasks {tasks}" if tasks else ""
    command = (f"protege baselines --model {model} --card-only{selected}" if card_only else
               f"protege baselines --model {model} --limit {limit}{selected}" + (" --card" if card else ""))
    with user_errors(ValueError):
        path = write_baselines(model, out, tasks.split(",") if tasks else None, limit or None, str(runs_dir), command,
                               card=card, card_only=card_only)
    typer.echo(f"wrote {path}")


@app.command()
def generate(config: Path = typer.Argument(..., help="run config YAML"),
             overrides: List[str] = typer.Argument(None, help="key.path=value overrides"),
             dry_run: bool = typer.Option(False, "--dry-run", help="print the projected tokens, time and money, "
                                          "measured on one calibration batch, and generate nothing else")):
    """Run the flow up to the generate stage (finished stages are reused)."""
    if not dry_run:
        _run(config, overrides or [], "generate")
        return
    from protege.config import load_config
    from protege.models.resolve import ModelNotFound
    from protege.pipeline import Pipeline
    from protege.store import JsonlLog
    from protege.synth.teacher import load_teacher
    from protege.synth.projection import format_projection, project_generation

    with user_errors(ModelNotFound):
        pipeline = Pipeline(load_config(config, overrides or []), progress=False)
        cfg, stage = pipeline.cfg, pipeline.stages["generate"]
        lm = load_teacher(cfg, stage)
        done = JsonlLog(stage / SAMPLES).ids()
        projection = project_generation(pipeline.spec, cfg.generate, lm, done_ids=done,
                                        price_in_per_m=cfg.cost.price_in_per_m,
                                        price_out_per_m=cfg.cost.price_out_per_m)
    typer.echo(format_projection(projection))


@app.command(name="serve")
def serve_command(model: str = typer.Option(..., help="bundled:..., hf:... or a local model folder"),
                  host: str = typer.Option("127.0.0.1", help="address to bind (0.0.0.0: every interface)"),
                  port: int = typer.Option(8000, help="port to bind"),
                  batch_size: int = typer.Option(16, help="most prompts answered in one batch"),
                  adapter: Optional[Path] = typer.Option(None, help="a LoRA adapter folder to merge in "
                                                         "(a run's train-<hash>/adapter)"),
                  log_requests: bool = typer.Option(False, "--log-requests", help="log each request to stderr"),
                  request_seconds: float = typer.Option(60.0, help="the longest one batch decodes; longer answers "
                                                        "are cut there (finish_reason length)")):
    """Serve a model over an OpenAI-compatible HTTP API (use it as openai:<id>@http://HOST:PORT/v1)."""
    from protege.models.resolve import ModelNotFound
    from protege.serve import serve

    try:
        with user_errors(ModelNotFound, FileNotFoundError, ValueError):
            serve(model, host, port, batch_size, str(adapter) if adapter else None, log_requests, request_seconds)
    except OSError as e:  # binding: the port is taken or the address is not this machine's
        fail(f"cannot listen on {host}:{port}: {e}; pick another --port or --host")


@app.command()
def train(config: Path = typer.Argument(..., help="run config YAML"),
          overrides: List[str] = typer.Argument(None, help="key.path=value overrides"),
          method: Optional[str] = typer.Option(None, help=f"overrides train.method: {registry.help_text()}"),
          processes: int = typer.Option(1, help="train in this many data-parallel processes (sft, kd, onpolicy; "
                                        "gloo on CPUs, NCCL with one GPU each); the stages before train run "
                                        "first, here")):
    """Run the flow up to the train stage (finished stages are reused)."""
    overrides = (overrides or []) + ([f"train.method={method}"] if method else [])
    if processes > 1:
        _train_in_processes(config, overrides, processes)
    _run(config, overrides, "train")


def _train_in_processes(config: Path, overrides: list[str], processes: int) -> None:
    """The stages before train here, then the train stage in `processes` processes under torchrun."""
    import subprocess
    import sys

    from protege.config import load_config

    with user_errors():
        cfg = load_config(config, overrides)
        if cfg.train.method not in ("sft", "kd", "onpolicy"):
            fail(f"--processes covers train.method sft, kd and onpolicy (protege's LoRA loop, each process's "
                 f"gradients weighted by the positions its loss averages); {cfg.train.method} runs in one process "
                 "(TRL's trainers take `accelerate launch` themselves)")
    _run(config, overrides, "curate")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "protege.train_launch", str(config), *overrides]
    if subprocess.run(command).returncode != 0:
        fail(f"the {processes} training processes failed (their output is above); rerun to resume from the last "
             "checkpoint")


@app.command()
def bench(config: Path = typer.Argument(..., help="bench config YAML (tasks, teachers, students, methods)"),
          executor: Optional[ExecutorKind] = typer.Option(None, help="local (in this process) or ray; default: "
                                                          "the config's executor.kind"),
          ray_address: Optional[str] = typer.Option(None, help="a running Ray cluster (default: start a local one)"),
          report_only: bool = typer.Option(False, help="run nothing: write the report from the cells finished so far "
                                           "(e.g. while another process runs the bench)"),
          status: bool = typer.Option(False, help="run and write nothing: print each data job's and cell's stages "
                                      "(done, begun, to do) and the time spent on them so far"),
          stage_dirs: bool = typer.Option(False, help="run and write nothing: print the finished and begun stage "
                                          "folders, one per line, for `protege runs pack`"),
          only: Optional[list[str]] = typer.Option(None, help="FIELD=VALUE (task, teacher, student, method; "
                                                   "repeatable): run, or show, only these cells; the report still "
                                                   "covers every finished cell")):
    """Run a students x teachers x tasks x methods matrix, resumably, and write the ranked report."""
    from protege.benchmark.runner import run_bench
    from protege.models.resolve import ModelNotFound

    if status or stage_dirs:
        from protege.benchmark.config import load_bench_config
        from protege.benchmark.matrix import build_cells
        from protege.benchmark.progress import bench_progress, render_progress, stage_dirs as folders
        from protege.benchmark.selection import select_cells

        with user_errors(ModelNotFound):
            progress = bench_progress(select_cells(build_cells(load_bench_config(config)), only or []))
        typer.echo(render_progress(progress) if status else "\n".join(str(p) for p in folders(progress)))
        return
    with user_errors(ModelNotFound):
        folder = run_bench(config, executor=executor, ray_address=ray_address, run=not report_only, only=only)
    typer.echo(f"report: {folder / 'report.md'} and {folder / 'report.html'}")


student_app = typer.Typer(no_args_is_help=True, help="Make student models.")
app.add_typer(student_app, name="student")


@app.command("export")
def export_command(config: Path = typer.Argument(..., help="the run config YAML of a finished run"),
                   overrides: List[str] = typer.Argument(None, help="key.path=value overrides (as given to the run)"),
                   format: ExportFormat = typer.Option("hf", "--format", help="hf: merged Hugging Face folder with "
                                                       "a model card; gguf: that folder plus a GGUF file; ollama: "
                                                       "both plus an Ollama Modelfile"),
                   out: Path = typer.Option(..., "--out", help="folder to write (replaced if it exists)"),
                   gguf_type: str = typer.Option("f16", help="GGUF weights: f32, f16, bf16 or q8_0 (f16 answered "
                                                 "as the HF model on 50 of 50 TREC-6 prompts, q8_0 on 44)")):
    """Take the trained student home: merged weights, a card with its measured scores, GGUF, Ollama."""
    from protege.config import load_config
    from protege.export.gguf import ConversionFailed, export_gguf
    from protege.export.hf import NotTrained, export_hf
    from protege.export.llama_source import ConverterUnavailable
    from protege.export.ollama import write_modelfile
    from protege.models.resolve import ModelNotFound

    with user_errors(NotTrained, ModelNotFound, ConversionFailed, ConverterUnavailable, ValueError):
        cfg = load_config(config, overrides or [])
        folder = export_hf(cfg, out / "hf" if format != "hf" else out, name=out.name)
        typer.echo(f"merged model and card: {folder}")
        if format in ("gguf", "ollama"):
            gguf = export_gguf(folder, out / f"{out.name}-{gguf_type}.gguf", gguf_type)
            typer.echo(f"GGUF ({gguf_type}): {gguf}")
        if format == "ollama":
            from transformers import AutoTokenizer

            template = AutoTokenizer.from_pretrained(str(folder)).chat_template
            typer.echo(f"Ollama: {write_modelfile(out, gguf.name, template)} (ollama create NAME -f Modelfile)")


@student_app.command("prune")
def prune_command(source: str = typer.Option(..., "--from", help="the model to prune: bundled:..., hf:... or a "
                                             "folder; the student keeps its tokenizer, so it can distil from it"),
                  keep_layers: int = typer.Option(..., help="decoder layers to keep (the most important ones)"),
                  out: Optional[Path] = typer.Option(None, help="output folder (default: under the protege "
                                                     "cache, printed at the end)"),
                  importance: Importance = typer.Option("nll", help="how layers are scored on the calibration text: "
                                                        "nll (loss increase when skipped) or cosine (block "
                                                        "influence)")):
    """Depth-prune a model into a smaller student that shares its tokenizer; use it as train.student=hf:OUT."""
    from protege.models.prune import prune_model, pruned_dir
    from protege.models.resolve import ModelNotFound, model_dir

    with user_errors(ModelNotFound, ValueError, FileExistsError):
        folder = model_dir(source)
        target = out or pruned_dir(source, keep_layers)
        summary = prune_model(folder, target, keep_layers, method=importance)
    typer.echo(f"kept layers {summary.get('kept')} of {summary.get('layers_before', '?')}; "
               f"parameters {summary.get('params_before', 0):,} -> {summary.get('params_after', 0):,}")
    typer.echo(f"student: hf:{target}")


runs_app = typer.Typer(no_args_is_help=True, help="Move run folders between machines (resumable there).")
app.add_typer(runs_app, name="runs")


@runs_app.command("pack")
def runs_pack(stages: List[Path] = typer.Argument(..., help="stage folders: runs/<task>/<stage>-<key>"),
              to: Path = typer.Option(..., "--to", help="carry folder to write into (CARRIED.json indexes it)"),
              runs_dir: Path = typer.Option(Path("runs"), help="the runs root the stages are under"),
              max_mb: float = typer.Option(20.0, help="files bigger than this are left out (listed); their "
                                           "stage then counts as partial where it is unpacked")):
    """Copy finished or half-finished stages into a folder you can move (git, rsync, a USB stick)."""
    from protege.runs_carry import pack

    with user_errors(ValueError):
        index = pack(stages, to, runs_dir, max_mb)
    for rel in (str(p.resolve().relative_to(runs_dir.resolve())) for p in stages):
        facts = index["stages"][rel]
        typer.echo(f"{rel}: {len(facts['files'])} files, {'complete' if facts['complete'] else 'partial'}")
    for line in index["left_out"]:
        typer.echo(f"left out: {line}")


@runs_app.command("unpack")
def runs_unpack(carry: Path = typer.Argument(..., help="a folder written by protege runs pack"),
                runs_dir: Path = typer.Option(Path("runs"), help="the runs root to restore into")):
    """Put carried stages under the runs root; a run then resumes or reuses them as if made here."""
    from protege.runs_carry import unpack

    with user_errors(ValueError):
        outcome = unpack(carry, runs_dir)
    said = {"restored": "restored", "replaced": "replaced a partial local copy", "kept": "kept (complete here)",
            "kept_partial": "kept (partial here and in the carry; remove it to take the carried one)"}
    for what, rels in outcome.items():
        for rel in rels:
            typer.echo(f"{runs_dir / rel}: {said[what]}")


for _name in ["curate", "report"]:
    app.command(name=_name)(_stage_command(_name))


if __name__ == "__main__":
    app()
