"""Run configuration: one pydantic model per stage, loaded from YAML, overridden from the command line.

    cfg = load_config("configs/demo-trec6.yaml", ["train.epochs=2", "generate.num_examples=60"])

Unknown keys are rejected and every problem is reported at once, each naming its field.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional, get_args

import yaml
from pydantic import AfterValidator, ConfigDict, Field, ValidationError, model_validator

from protege.cooperative.config import CooperativeConfig
from protege.choices import ExecutorKind, Precision, Scoring
from protege.errors import ConfigError, Strict, pydantic_problems
from protege.models.resolve import DEFAULT_MODEL
from protege.stage_keys import key_dump
from protege.tasks.spec import DataSource
from protege.train import registry


def _known_method(name: str) -> str:
    if name not in registry.METHODS:  # read when validating, so a method registered later counts too
        raise ValueError(f"{name!r} is not a training method; choose one of {', '.join(registry.METHODS)}")
    return name


MethodName = Annotated[str, AfterValidator(_known_method)]  # a name in train/registry.py: sft, kd, dpo, rl, onpolicy


class GenerateConfig(Strict):
    teacher: str = DEFAULT_MODEL
    num_examples: int = 480  # spread evenly over the labels
    seeds_per_prompt: int = 4  # seeds shown in each request, rotated per request for diversity
    temperature: float = 0.9
    top_p: float = 0.95
    max_new_tokens: Optional[int] = None  # None: 40 for a one-line classification input, more for whole items
    batch_size: int = 32  # requests per batch (local) and per append to samples.jsonl
    quantize: Optional[Literal["int8"]] = None  # a local teacher's Linear layers in int8 (about 2x fp32 on AVX2)
    # How the generate and answers stages' local models compute (the teacher, and the cooperative student):
    # auto | fp32 | bf16; None: the run's `precision`. E.g. bf16 teacher data on an AVX-512 BF16 CPU
    # for a student trained and evaluated in fp32. Those two stages key on the value it resolves to.
    precision: Optional[Precision] = None
    seed: int = 0
    # Diversity: each request is steered to one topic and/or written in one persona, rotated by request index.
    topics: list[str] = []
    personas: list[str] = []
    # items: the teacher's whole items; answers: the teacher alone re-answers each item's prompt; cooperative:
    # teacher and student answer it together (code and math; protege/synth/answers.py)
    mode: Literal["items", "answers", "cooperative"] = "items"
    student: Optional[str] = None  # cooperative: the student writing the style tokens (None: train.student)
    # Both answer modes: the teacher answering the items (None: generate.teacher, which wrote them). Lets a cheap
    # model write the problems and a specialist or larger one answer them.
    answers_teacher: Optional[str] = None
    cooperative: CooperativeConfig = CooperativeConfig()
    # Items from a data file of the task's kind instead of the teacher's (human-written problems, e.g. MBPP's
    # train split: {path: "data:mbpp/mbpp.jsonl", format: mbpp, rows: "600:974"}); at most num_examples of them.
    # The teacher answers them in generate.mode=answers (or cooperative); in items mode their own references
    # are the training data. Rows that repeat a test item are dropped when read.
    prompts_from: Optional[DataSource] = None


class CurateConfig(Strict):
    """Curation filters, in the order they run (see protege/synth/curate.py); thresholds are fixed up front or
    chosen on seeds and validation, never on the test set."""

    # schema: per-kind validity and lengths
    min_chars: int = 10
    max_chars: Optional[int] = None  # longest `text`; None: per kind (classification 300 ... code 1000)
    max_context_chars: int = 4000  # qa passages
    max_reference_chars: int = 4000  # code solutions, math worked answers
    # duplicates: exact (normalised input) first, near-duplicates last
    dedup: bool = True
    near_dup_jaccard: Optional[float] = 0.8  # word-shingle Jaccard (MinHash LSH candidates); None: off
    shingle_words: int = 3
    minhash_perms: int = 128
    lsh_bands: int = 32  # must divide minhash_perms; 32 bands of 4 rows find pairs above ~0.6 reliably
    near_dup_cosine: Optional[float] = None  # MiniLM cosine between generated items; None: off
    # decontamination against test and validation inputs (and qa passages)
    decontaminate: bool = True
    contam_ngram: int = 10  # any shared word n-gram, between strings of at least 2n words
    contam_overlap: float = 0.8  # shorter strings: share of the shorter one's word trigrams found in the other
    contam_common_max: int = 5  # n-grams in more protected strings than this are boilerplate, not evidence
    contam_cosine: Optional[float] = 0.9  # MiniLM cosine to a test/validation input (paraphrases); None: off
    # other tasks whose test sets no training item may copy either (e.g. [humaneval] for an MBPP run that is
    # also evaluated on HumanEval); each read is logged in the curate stage's test-access log
    decontaminate_against: list[str] = []
    # code: run each solution against its tests in the sandbox, then prefer simple solutions
    allow_code_execution: bool = False  # required for code tasks: generated solutions are untrusted code
    exec_timeout_s: float = 5.0
    max_cyclomatic: int = 10
    max_ast_nodes: int = 300
    max_lines: int = 40
    drop_unused: bool = True  # unused imports, functions, variables, and helpers/classes that add nothing
    drop_lint: bool = True  # pyflakes-like errors: undefined names, star imports, redefinitions, ...
    keep_simplest: bool = True  # several passing solutions of one problem: keep the simplest

    @model_validator(mode="after")
    def _check(self):
        problems = []
        for name in ("near_dup_jaccard", "near_dup_cosine", "contam_cosine", "contam_overlap"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 1:
                problems.append(f"curate.{name} must be in (0, 1] (or null to switch it off); got {value}")
        if self.minhash_perms < 1 or self.lsh_bands < 1 or self.minhash_perms % self.lsh_bands:
            problems.append(f"curate.lsh_bands ({self.lsh_bands}) must divide curate.minhash_perms "
                            f"({self.minhash_perms}), e.g. 32 bands of 128")
        for name in ("shingle_words", "contam_ngram", "exec_timeout_s", "max_cyclomatic", "max_ast_nodes",
                     "max_lines", "max_context_chars", "max_reference_chars"):
            if getattr(self, name) <= 0:
                problems.append(f"curate.{name} must be positive; got {getattr(self, name)}")
        if self.max_chars is not None and self.max_chars < self.min_chars:
            problems.append(f"curate.max_chars ({self.max_chars}) is below curate.min_chars ({self.min_chars})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class KDConfig(Strict):
    """Logit distillation: loss = (1 - alpha) * CE + alpha * T^2 * KD on the answer tokens (train.method=kd).
    Needs a student that shares the teacher's vocabulary (`protege student prune --from <teacher>`)."""

    teacher: Optional[str] = None  # None: generate.teacher (generate.answers_teacher in the answer modes)
    alpha: float = 0.5
    temperature: float = 1.0
    divergence: Literal["forward_kl", "reverse_kl", "jsd"] = "forward_kl"
    beta: float = 0.5  # jsd: weight of the teacher in the mixture
    signal: Literal["cache", "online"] = "cache"  # cache: top-k teacher logits written once, read every epoch
    top_k: int = 64  # cache: teacher probabilities kept per token; the rest is one bucket
    chunk_tokens: int = 256  # vocabulary projections held at once (bounds memory)
    # A teacher with another tokenizer (train/cross_tokenizer.py): auto aligns by character offsets and compares
    # on the shared tokens (the teacher's logits online); align does so even for one tokenizer; refuse stops
    cross_tokenizer: Literal["auto", "align", "refuse"] = "auto"
    # Across tokenizers, which positions are compared: span (both next tokens are the same text: start and end
    # at the same characters) or start (they only start together; before session 22, and it taught a SmolLM2
    # student Qwen's bare newline where its own token is newline + indentation). One tokenizer: the same.
    align: Literal["span", "start"] = "span"

    @model_validator(mode="after")
    def _check(self):
        problems = []
        if not 0 <= self.alpha <= 1:
            problems.append(f"train.kd.alpha must be in [0, 1]; got {self.alpha}")
        if self.temperature <= 0:
            problems.append(f"train.kd.temperature must be positive; got {self.temperature}")
        if not 0 < self.beta < 1:
            problems.append(f"train.kd.beta must be in (0, 1); got {self.beta}")
        if self.top_k < 1 or self.chunk_tokens < 1:
            problems.append("train.kd.top_k and train.kd.chunk_tokens must be positive")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class DPOConfig(Strict):
    """DPO on the teacher's correct vs incorrect answers (train.method=dpo): the teacher answers each training
    prompt `samples_per_prompt` times, each answer is judged (label, exact number, execution), and a correct
    and a wrong answer make a pair (train/preference.py); TRL's DPOTrainer trains a LoRA adapter (train/dpo.py)."""

    # base: DPO's LoRA starts from the student itself; sft: from this run's SFT adapter (train.method=sft with the
    # same settings, trained first or reused), with that adapter as the reference policy: the usual SFT-then-DPO
    start: Literal["base", "sft"] = "base"
    samples_per_prompt: int = 4
    temperature: float = 0.8  # teacher sampling for the pairs
    # Few-shot examples from the seeds shown to the teacher (per label for classification), so its answers take
    # the task's answer format; the student's pairs keep the zero-shot prompt. 0: the teacher answers zero-shot,
    # which for a small teacher means free-form sentences (TREC-6: 9% right zero-shot, 18% with 1 shot per label).
    teacher_shots: int = 1
    pairs_per_prompt: int = 1
    beta: float = 0.1  # strength of the pull towards the reference policy
    lr: float = 5e-5  # LoRA adapters take a larger rate than full-model DPO (TRL's default there is 1e-6)
    epochs: int = 1
    batch_size: int = 4  # pairs per optimizer step
    # prompt + answer tokens; longer answers are cut at the end (TRL's keep_start), and a pair whose prompt alone
    # fills it is dropped (summary: pairs_trained)
    max_length: int = 512
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    checkpoint_every: int = 20  # optimizer steps between resumable checkpoints
    seed: int = 0


class OnPolicyConfig(Strict):
    """On-policy distillation (train.method=onpolicy; GKD, Agarwal et al. 2024): at each step the student samples
    answers to the batch's prompts, the teacher scores the student's own tokens, and the loss is a divergence
    between the two over those tokens (train/onpolicy.py). A teacher with another vocabulary scores the student's
    text in its own tokens, aligned by character offsets (cross_tokenizer below)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    teacher: Optional[str] = None  # None: the answers teacher (generate.answers_teacher, else generate.teacher)
    # 0: forward KL(teacher || student), mass-covering; 1: reverse KL(student || teacher), mode-seeking; between:
    # the generalised JSD with this weight on the teacher (kd_loss.divergence)
    beta: float = 0.5
    # Share of steps that train on the teacher's own answers (the curated rows) instead of the student's samples:
    # 0 is fully on-policy, 1 is offline KD on the teacher's text (`lambda` in YAML and overrides)
    mix: float = Field(0.0, alias="lambda")
    temperature: float = 1.0  # the student's sampling temperature (0: greedy)
    max_new_tokens: Optional[int] = None  # None: the kind's answer cap (kind.MAX_NEW_TOKENS)
    top_k: Optional[int] = None  # None: the teacher's whole distribution; k: its k most likely and a rest bucket
    chunk_tokens: int = 256
    # Tokens (rows x longest row) scored and trained at once: a step's rows in micro-batches, each backpropagated in
    # turn, the same step up to rounding (train/micro_batch.py; the measured case in scripts/continue-experiments.sh)
    micro_batch_tokens: Optional[int] = Field(None, gt=0)
    # A teacher with another tokenizer: auto scores the student's text re-tokenised by the teacher, aligned by
    # character offsets, on the shared tokens (train/cross_tokenizer.py); align does so even for one tokenizer
    cross_tokenizer: Literal["auto", "align", "refuse"] = "auto"
    align: Literal["span", "start"] = "span"  # as train.kd.align
    # The budget in token passes (student sampling + teacher scoring + student training, as train/rl.py counts)
    # or seconds; match_sft: the token passes the same run's SFT would spend. Neither: every epoch runs.
    budget_tokens: Optional[int] = None
    budget_seconds: Optional[float] = None
    match_sft: bool = True

    @model_validator(mode="after")
    def _check(self):
        problems = []
        if not 0 <= self.beta <= 1:
            problems.append(f"train.onpolicy.beta must be in [0, 1] (0 forward KL, 1 reverse KL); got {self.beta}")
        if not 0 <= self.mix <= 1:
            problems.append(f"train.onpolicy.lambda must be in [0, 1]; got {self.mix}")
        if self.temperature < 0:
            problems.append(f"train.onpolicy.temperature must be >= 0; got {self.temperature}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RLConfig(Strict):
    """GRPO with an executable or exact reward (train.method=rl), stopped at a compute budget (train/rl.py)."""

    lr: float = 1e-5
    num_generations: int = 4  # answers sampled per prompt; advantages are relative within this group
    prompts_per_step: int = 2  # one optimizer step trains on prompts_per_step * num_generations answers
    # Answers per forward and backward (TRL's gradient accumulation: the same step); None: all at once
    micro_batch_rows: Optional[int] = Field(None, gt=0)
    max_completion_length: Optional[int] = None  # None: the kind's own answer cap (kind.MAX_NEW_TOKENS)
    temperature: float = 1.0
    beta: float = 0.0  # KL pull towards the reference (the adapter disabled); 0 skips the reference forward
    epochs: int = 1  # passes over the items when no budget is given
    max_steps: Optional[int] = None  # a ceiling on optimizer steps, budget or not
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    checkpoint_every: int = 20
    seed: int = 0
    # The budget in token passes (tokens through one forward, with or without backward; train/rl.py) or
    # seconds. match_sft: the token passes the same run's SFT would spend (prompt + answer tokens x epochs).
    budget_tokens: Optional[int] = None
    budget_seconds: Optional[float] = None
    match_sft: bool = True  # used when neither budget is set
    # base: GRPO's LoRA starts from the student itself; sft: from this run's SFT adapter (train.method=sft with the
    # other settings the same, trained first or reused), which is then also the reference of the KL term (beta)
    start: Literal["base", "sft"] = "base"

    @property
    def answers_per_step(self) -> int:
        """The answers one optimizer step generates together and trains on."""
        return self.prompts_per_step * self.num_generations


class TrainConfig(Strict):
    student: str = DEFAULT_MODEL
    method: MethodName = "sft"  # train/registry.py says what each learns from
    lora_rank: int = 64
    lora_alpha: int = 128
    lora_dropout: float = 0.0
    lr: float = 5e-5
    lr_schedule: Literal["linear", "constant"] = "linear"
    warmup_steps: int = 0
    epochs: int = 3
    batch_size: int = 8
    max_seq_len: int = 256
    include_seeds: bool = True
    max_examples: Optional[int] = None  # train on the first N curated rows only (compare data sets at equal size)
    # Where the step log also goes (TRL's convention): tensorboard writes event files into the train stage's
    # tensorboard/ folder (`tensorboard --logdir runs/`); sft, kd and onpolicy. Not part of what is trained: it
    # never reruns a stage.
    report_to: Literal["none", "tensorboard"] = "none"
    checkpoint_every: int = 20  # steps between resumable checkpoints
    seed: int = 0
    # sft and kd (one tokenizer): a step's rows in micro-batches of at most this many tokens (rows x longest row),
    # each backpropagated in turn: memory holds one micro-batch's activations, the same step up to float rounding
    # (train/micro_batch.py). On-policy has train.onpolicy.micro_batch_tokens, GRPO train.rl.micro_batch_rows.
    micro_batch_tokens: Optional[int] = Field(None, gt=0)
    kd: KDConfig = KDConfig()
    dpo: DPOConfig = DPOConfig()
    rl: RLConfig = RLConfig()
    onpolicy: OnPolicyConfig = OnPolicyConfig()

    @model_validator(mode="after")
    def _micro_batches(self):
        if self.micro_batch_tokens is not None and self.method not in ("sft", "kd"):
            own = {"onpolicy": "train.onpolicy.micro_batch_tokens", "rl": "train.rl.micro_batch_rows"}
            raise ValueError(f"train.micro_batch_tokens applies to train.method sft and kd, not {self.method}: "
                             + (f"use {own[self.method]}" if self.method in own else "leave it unset"))
        return self

    def stage_key(self) -> dict:
        """What determines a trained model: the settings of other methods are left out, so changing them
        reruns nothing."""
        return key_dump(self, exclude={"kd", "dpo", "rl", "onpolicy", "report_to"} - {self.method})


class ForgettingConfig(Strict):
    """A fixed general regression suite, measured on the student before and after training."""

    tasks: list[str] = ["gsm8k", "mbpp", "nq_open"]  # built-in names or spec paths; the target task is skipped
    items: int = 50  # the first N test items of each
    # Largest allowed drop, in points (0-100) of a task's headline metric: {gsm8k: 5}, or {gsm8k.number_match: 5}.
    # A drop beyond it marks the run failed and the command exits non-zero. Tasks not named are reported only.
    max_drop: dict[str, float] = {}


class EvalConfig(Strict):
    scoring: Scoring = "likelihood"  # classification: label likelihood or parse
    few_shot_per_label: int = 1  # shots drawn from the seeds (never from the test set); per label or in all
    max_test_items: Optional[int] = None  # None: the whole test set
    bootstrap_resamples: int = 1000
    evaluate_teacher: bool = True
    # The teacher row's shots (0: zero-shot, as `protege baselines` scores a model card's tasks, so a finished
    # `protege eval`/`baselines` run of the teacher is reused); None: the student's few-shot row's shots.
    teacher_shots: Optional[int] = Field(default=None, ge=0)
    allow_code_execution: bool = False  # run generated code in the sandbox (code tasks, code in the suite)
    forgetting: ForgettingConfig = ForgettingConfig()


class CostConfig(Strict):
    """Prices for HTTP teachers, in money per million tokens (a local model costs time, not money).
    Not part of any stage key: changing a price never reruns anything."""

    price_in_per_m: float = 0.0
    price_out_per_m: float = 0.0
    budget: Optional[float] = None  # stop generation cleanly once this much money is spent (HTTP teachers)
    token_budget: Optional[int] = None  # or once this many tokens (in + out) are spent


class EndpointConfig(Strict):
    """How protege talks to an OpenAI-compatible teacher (`openai:<model>@<base_url>`). Not part of any stage
    key: these settings change how requests are sent, never what is asked."""

    api_key_env: str = "OPENAI_API_KEY"  # the environment variable holding the key (unset: no key sent)
    max_concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 6


class TeacherGateConfig(Strict):
    """Score the teacher on validation items (else the seeds) before generating; refuse below min_score.
    Not part of any stage key."""

    min_score: Optional[float] = None  # in points (0-100) of the task's headline metric; None: no gate
    items: int = 32
    shots: int = 1  # few-shot examples from the seeds (per label for classification), never the item itself
    force: bool = False  # generate anyway when the teacher scores below min_score


TeacherRole = Literal["items", "answers", "kd", "dpo", "onpolicy"]


class ExecutorSettings(Strict):
    """Where the generate stage's batches run (synth/sharded.py): in this process (local), or on Ray workers, each
    with its own copy of the teacher. Results are the same either way, so this is no part of any stage key."""

    kind: ExecutorKind = "local"
    workers: int = 2  # Ray actors, each holding the teacher
    cpus_per_worker: float = 1
    address: Optional[str] = None  # None: start a local Ray cluster; else connect ("auto", "ray://host:10001")
    ray_num_cpus: Optional[int] = None  # size of that local cluster; None: every CPU of this machine

    @model_validator(mode="after")
    def _sizes(self):
        if self.workers < 1 or self.cpus_per_worker <= 0:
            raise ValueError("executor.workers must be at least 1 and executor.cpus_per_worker positive")
        return self


class RunConfig(Strict):
    task: str = "trec6"
    runs_dir: str = "runs"
    # How local models compute (models/precision.py): auto (bf16 on CPUs with AMX/AVX-512 BF16 and on GPUs, else
    # fp32), fp32 or bf16. None: $PROTEGE_PRECISION, else auto. Stages that run a local model key on the value
    # it resolves to (pipeline.py).
    precision: Optional[Precision] = None
    # Where local models compute (models/device.py): auto (the first GPU torch sees, else the CPU), cpu, cuda or
    # cuda:N. None: $PROTEGE_DEVICE, else auto. Stages key on it off the CPU only.
    device: Optional[str] = None
    executor: ExecutorSettings = ExecutorSettings()
    generate: GenerateConfig = GenerateConfig()
    curate: CurateConfig = CurateConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    cost: CostConfig = CostConfig()
    endpoint: EndpointConfig = EndpointConfig()
    teacher_gate: TeacherGateConfig = TeacherGateConfig()

    @model_validator(mode="after")
    def _cross_field(self):
        if self.device is not None:
            from protege.models.device import check_device

            check_device(self.device, "device")
        if self.generate.num_examples < 1:
            raise ValueError("generate.num_examples must be at least 1")
        if self.train.epochs < 1:
            raise ValueError("train.epochs must be at least 1")
        sizes = {"generate.batch_size": self.generate.batch_size, "train.batch_size": self.train.batch_size,
                 "train.checkpoint_every": self.train.checkpoint_every, "train.max_seq_len": self.train.max_seq_len,
                 "train.lora_rank": self.train.lora_rank, "eval.bootstrap_resamples": self.eval.bootstrap_resamples}
        small = [f"{name} must be at least 1; got {value}" for name, value in sizes.items() if value < 1]
        if self.train.report_to == "tensorboard" and self.train.method in ("dpo", "rl"):
            small.append(f"train.report_to: tensorboard covers the LoRA loop of sft, kd and onpolicy; "
                         f"train.method={self.train.method} runs in TRL and logs to train_log.jsonl only; set "
                         "train.report_to: none")
        rl, dpo = self.train.rl, self.train.dpo
        if rl.num_generations < 2:
            small.append(f"train.rl.num_generations must be at least 2 (GRPO's advantage compares answers to the "
                         f"same prompt; one answer has nothing to compare with); got {rl.num_generations}")
        if rl.prompts_per_step < 1:
            small.append(f"train.rl.prompts_per_step must be at least 1; got {rl.prompts_per_step}")
        if dpo.samples_per_prompt < 2:
            small.append(f"train.dpo.samples_per_prompt must be at least 2 (a pair needs a right and a wrong "
                         f"answer to one prompt); got {dpo.samples_per_prompt}")
        if dpo.pairs_per_prompt < 1 or dpo.batch_size < 1:
            small.append("train.dpo.pairs_per_prompt and train.dpo.batch_size must be at least 1")
        if self.train.max_examples is not None and self.train.max_examples < 1:
            small.append(f"train.max_examples must be at least 1 (or null for all); got {self.train.max_examples}")
        if small:
            raise ValueError("; ".join(small))
        return self

    def teacher_for(self, role: TeacherRole) -> str:
        """The one place that decides which teacher does what (every stage and method asks here):

        items    writes the new items: generate.teacher (the teacher gate scores this one)
        answers  writes the answers the student learns from: generate.answers_teacher in the answer modes when
                 set, else generate.teacher; the eval stage's teacher row is this teacher
        kd       gives the logits: train.kd.teacher, else the answers teacher
        onpolicy scores the student's own samples: train.onpolicy.teacher, else the answers teacher
        dpo      samples the answers DPO pairs are judged from: generate.teacher
        """
        g = self.generate
        answers = g.answers_teacher if g.mode != "items" and g.answers_teacher else g.teacher
        if role == "items" or role == "dpo":
            return g.teacher
        if role == "answers":
            return answers
        if role == "kd":
            return self.train.kd.teacher or answers
        if role == "onpolicy":
            return self.train.onpolicy.teacher or answers
        raise ValueError(f"teacher role {role!r}: use one of {', '.join(get_args(TeacherRole))}")


def apply_override(raw: dict, override: str) -> None:
    """Apply `a.b.c=value` (value parsed as YAML, so numbers and booleans keep their types)."""
    if "=" not in override:
        raise ConfigError("command line", [f"{override!r}: overrides look like key.path=value"])
    key, value = override.split("=", 1)
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError("command line", [f"{key}: {part} is not a section"])
    node[parts[-1]] = yaml.safe_load(value)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    source = str(path) if path else "command line"
    raw: dict = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(source, ["file not found; pass the path of a run config YAML (see configs/)"])
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(source, [f"not valid YAML: {e}"]) from None
        if not isinstance(raw, dict):
            raise ConfigError(source, ["(top level): a run config is a mapping of sections"])
    for o in overrides:
        apply_override(raw, o)
    try:
        return RunConfig(**raw)
    except ValidationError as e:
        raise ConfigError(source, pydantic_problems(e)) from None
