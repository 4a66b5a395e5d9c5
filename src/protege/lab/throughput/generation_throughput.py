"""Generation throughput on SmolLM2-135M-Instruct: protege's batched generator against a naive loop and llama.cpp.

    python -m protege.lab.throughput.generation_throughput [--prompts 64] [--max-new-tokens 128] [--task mbpp]
        [--seeds-per-prompt 1] [--batch-size 64] [--slots 4,8,16] [--no-llama] [--no-build] [--stop-at-eos]
        [--defaults-only] [--no-naive] [--json PATH]

The same chat prompts for all: the first --prompts distinct requests of the task's generate-stage plan, with
--seeds-per-prompt seed items shown and a topic from TOPICS each (MBPP has only 10 seed items, so one seed alone
repeats prompts, and a server would skip the prefill of a repeat from its prompt cache); for MBPP at one seed,
250-540 tokens each, and SmolLM2 writes whole items, so completions run to the cap. Greedy, the same
max_new_tokens, output tokens per second of wall time (model loading and a short warm-up excluded) for
  1. protege: LocalLM.generate with batch --batch-size (whatever local.py does today; called as-is): without
     prompt-prefix caching (session 4) and with it but decoding in transformers' generate over a per-row cache
     (session 5), both in the precision auto picks here; then the default (prefix cache and shared-prefix
     decoding) in each precision this CPU has: fp32, bf16 (where the CPU multiplies bf16 natively: AMX or
     AVX-512 BF16), int8 (`generate.quantize: int8`, activations fp32) and int8 under bf16; each row also counts
     the prompt tokens run through the model, and its share of the Linear-layer ceiling of its precision at
     its batch: the Linear layers alone at several batch sizes (linear_ceiling.py), which decoding through
     them cannot pass,
  2. naive: transformers `model.generate` one prompt at a time, plain fp32, the same weights,
  3. llama-cpp-python's `python -m llama_cpp.server` on the bundled Q4_1 GGUF, fed by OpenAILM with 4 requests
     in flight (that server serialises requests behind one lock: it has no parallel slots),
  4. llama.cpp's C++ `llama-server` on the same GGUF with --parallel N slots (each --slots value; context =
     slots x the longest prompt + max_new_tokens), fed by OpenAILM with N requests in flight.
llama.cpp comes from protege/lab/throughput/llama_cpp_setup.py: from the cache when built before, else built here
(about 20 + 10 min on 2 shared cores; --no-build skips instead); a failed build skips those rows with the reason.
Both servers reuse a cached common prefix (the instruction and the seed item shown), so they prefill fewer prompt
tokens than they are sent (llama-server at 8 slots: about 5k of 22k); their logs show how many.

Tokens/s is the measure, so the naive loop and the llama.cpp servers are kept from stopping at end-of-turn
(min_new_tokens / logit_bias / ignore_eos) unless --stop-at-eos; LocalLM is called untouched and stops where it
stops: the `at cap` column counts the completions that reached max_new_tokens in every row. The 2 cores are
shared, so each row also shows the 1-minute load average at its start (`load`) and the average cores busy during
it with the benchmark (`ours`: this process and the server) and with everything else (`others`). Results are
written as JSON (default runs/bench/generation_throughput.json, the servers' logs beside it). At the defaults the
run takes about 22 minutes on 2 idle cores, a third of it the naive loop.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil  # a dependency of accelerate

from protege.lab.throughput import llama_cpp_setup
from protege.lab.throughput.linear_ceiling import decoding_layers, linear_ceiling
from protege.config import GenerateConfig
from protege.models.base import Generation, GenerationConfig
from protege.models.openai_http import OpenAILM
from protege.models.precision import bf16_fast, resolve_precision
from protege.models.resolve import DEFAULT_MODEL, _gguf_path, load_lm, model_dir
from protege.models.shared_prefix_decode import shared_decoding_supported
from protege.provenance import provenance
from protege.store import atomic_write_json
from protege.synth.plan import planned_requests
from protege.tasks.spec import load_task

EOS_TOKENS = ["<|im_end|>", "<|endoftext|>"]  # SmolLM2's end of turn and end of text
WARM_UP = [{"role": "user", "content": "Say hello."}]
TOPICS = ["strings", "lists", "dictionaries", "sets", "tuples", "recursion", "sorting", "searching",
          "prime numbers", "geometry", "dates", "regular expressions", "matrices", "bit manipulation",
          "digits of numbers", "parsing text"]


def bench_prompts(task: str, n: int, seeds_per_prompt: int) -> list:
    """The first n distinct prompts of the task's generate plan with TOPICS rotated in."""
    plan = GenerateConfig(num_examples=8 * n, seeds_per_prompt=seeds_per_prompt, topics=TOPICS)
    distinct: dict[str, list] = {}
    for r in planned_requests(load_task(task), plan):
        distinct.setdefault(json.dumps(r["prompt"]), r["prompt"])
    prompts = list(distinct.values())[:n]
    if len(prompts) < n:
        raise SystemExit(f"the {task} plan has only {len(prompts)} distinct prompts; lower --prompts or raise "
                         "--seeds-per-prompt")
    return prompts


class _ExtraBodyLM(OpenAILM):
    """OpenAILM with server-specific fields added to every request body (to keep a server from stopping)."""

    def __init__(self, *args, extra: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra = extra

    def _payload(self, prompt, config):
        path, body = super()._payload(prompt, config)
        return path, {**body, **self.extra}


def naive_generate(model, tok, prompts, config: GenerationConfig, stop_at_eos: bool) -> list[Generation]:
    """The loop a user writes first: one prompt, one `model.generate`, next prompt."""
    import torch

    out = []
    for prompt in prompts:
        enc = tok.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        n_in = enc["input_ids"].shape[1]
        floor = {} if stop_at_eos else {"min_new_tokens": config.max_new_tokens}
        with torch.inference_mode():
            ids = model.generate(**enc, max_new_tokens=config.max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id, **floor)[0, n_in:].tolist()
        if tok.eos_token_id in ids:
            ids = ids[: ids.index(tok.eos_token_id)]
        out.append(Generation(text=tok.decode(ids), tokens_in=n_in, tokens_out=len(ids)))
    return out


def _cpu_seconds(pids: tuple[int, ...]) -> tuple[float, float]:
    """CPU seconds so far: busy on the whole machine, and spent by this process and `pids` (a server)."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)
    return busy, sum(sum(psutil.Process(p).cpu_times()[:2]) for p in (os.getpid(), *pids))


def measure(backend: str, parallel: int, generate, prompts, config: GenerationConfig, pids=()) -> dict:
    """Warm up on an unrelated prompt (a server must not find a measured one cached), then time `generate`
    over all the prompts; the row of the table. The 1-minute load average at the start still carries the
    previous measurement, so `others` (cores kept busy by other processes meanwhile) is the cleaner noise sign."""
    generate([WARM_UP], GenerationConfig(max_new_tokens=4))
    load = os.getloadavg()[0]
    print(f"  {backend} ({len(prompts)} prompts, {parallel} at once), load {load:.2f} ...", flush=True)
    busy0, ours0 = _cpu_seconds(pids)
    t0 = time.perf_counter()
    gens = generate(prompts, config)
    wall = time.perf_counter() - t0
    busy1, ours1 = _cpu_seconds(pids)
    out = sum(g.tokens_out for g in gens)
    return {"backend": backend, "prompts": len(prompts), "parallel": parallel,
            "tokens_in": sum(g.tokens_in for g in gens), "tokens_out": out,
            "at_cap": sum(g.tokens_out >= config.max_new_tokens for g in gens),
            "wall_s": round(wall, 2), "tok_s": round(out / wall, 1), "load_1m_at_start": round(load, 2),
            "our_cores": round((ours1 - ours0) / wall, 2),
            "other_cores": round(max(0.0, (busy1 - busy0) - (ours1 - ours0)) / wall, 2)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process on a free local port, up once GET `ready_path` answers 200, killed on exit."""

    def __init__(self, cmd: list[str], ready_path: str, log: Path, timeout_s: float = 300):
        self.port = _free_port()
        self.cmd = [c.replace("{port}", str(self.port)) for c in cmd]
        self.ready_path, self.log, self.timeout_s = ready_path, log, timeout_s

    def __enter__(self) -> "Server":
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + self.timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.ready_path}", timeout=5) as r:
                    if r.status == 200:
                        self.url = f"http://127.0.0.1:{self.port}/v1"
                        return self
            except OSError:
                time.sleep(1)
        self.__exit__()
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-10:])
        raise RuntimeError(f"{self.cmd[0]} did not come up (exit code {self.proc.returncode}):\n{tail}")

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def llama_rows(args, prompts, config, ctx_per_request: int, eos_ids: list[int], logs: Path) -> tuple[list, list]:
    """The llama.cpp rows, and a message for each one that could not run."""
    rows, skipped = [], []
    gguf = str(_gguf_path(DEFAULT_MODEL.split(":", 1)[1]))
    ok, msg = llama_cpp_setup.ensure_python_server(build=not args.no_build)
    print(f"  {msg}", flush=True)
    if ok:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port",
               "{port}", "--n_ctx", str(ctx_per_request), "--n_threads", "2", "--n_threads_batch", "2"]
        extra = {} if args.stop_at_eos else {"logit_bias": {str(i): -100.0 for i in eos_ids}}
        try:
            with Server(cmd, "/v1/models", logs / "llama_cpp_server.log") as srv:
                lm = _ExtraBodyLM("smollm2", srv.url, max_concurrency=4, timeout_s=900, max_retries=0, extra=extra)
                rows.append(measure("llama_cpp.server (serial)", 4, lm.generate, prompts, config, (srv.proc.pid,)))
        except Exception as e:
            skipped.append(f"llama_cpp.server: {e}")
    else:
        skipped.append(f"llama_cpp.server: {msg}")
    ok, msg = llama_cpp_setup.ensure_llama_server(build=not args.no_build)
    print(f"  {msg}", flush=True)
    if not ok:
        return rows, skipped + [f"llama-server: {msg}"]
    for slots in args.slots:
        cmd = [str(llama_cpp_setup.server_binary()), "-m", gguf, "--host", "127.0.0.1", "--port", "{port}",
               "-c", str(slots * ctx_per_request), "--parallel", str(slots), "-t", "2", "-tb", "2"]
        extra = {} if args.stop_at_eos else {"ignore_eos": True}
        try:
            with Server(cmd, "/health", logs / f"llama_server_{slots}.log") as srv:
                lm = _ExtraBodyLM("smollm2", srv.url, max_concurrency=slots, timeout_s=900, max_retries=0, extra=extra)
                rows.append(measure("llama-server", slots, lm.generate, prompts, config, (srv.proc.pid,)))
        except Exception as e:
            skipped.append(f"llama-server --parallel {slots}: {e}")
    return rows, skipped


def format_table(rows: list[dict]) -> str:
    naive = next((r["tok_s"] for r in rows if r["backend"].startswith("naive")), None)
    w = max(len(r["backend"]) for r in rows) + 2
    head = (f"{'backend':<{w}}{'prompts':>8}{'batch/slots':>12}{'tokens in':>10}{'tokens out':>11}{'at cap':>7}"
            f"{'wall s':>9}{'tok/s':>9}{'vs naive':>9}{'load':>6}{'ours':>6}{'others':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r['tok_s'] / naive:.1f}x" if naive else "-"
        lines.append(f"{r['backend']:<{w}}{r['prompts']:>8}{r['parallel']:>12}{r['tokens_in']:>10}"
                     f"{r['tokens_out']:>11}{r['at_cap']:>7}{r['wall_s']:>9.1f}{r['tok_s']:>9.1f}{ratio:>9}"
                     f"{r['load_1m_at_start']:>6.2f}{r['our_cores']:>6.2f}{r['other_cores']:>7.2f}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--task", default="mbpp", help="whose generate-stage prompts")
    ap.add_argument("--seeds-per-prompt", type=int, default=1,
                    help="seed items shown per prompt (mbpp: ~340 prompt tokens at 1, ~1050 at generate's 4)")
    ap.add_argument("--batch-size", type=int, default=None, help="LocalLM batch (default: all the prompts)")
    ap.add_argument("--slots", default="4,8,16", help="llama-server --parallel values, comma-separated")
    ap.add_argument("--no-llama", action="store_true", help="skip both llama.cpp servers")
    ap.add_argument("--defaults-only", action="store_true",
                    help="only protege's default decoder, fp32 and int8 (for batch-size sweeps): no earlier "
                         "protege paths, no naive loop, no llama.cpp")
    ap.add_argument("--no-build", action="store_true", help="use cached llama.cpp builds only, never build")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive one-prompt-at-a-time loop (a third of the "
                                                           "bench's time; its row only anchors the 'vs naive' column)")
    ap.add_argument("--stop-at-eos", action="store_true",
                    help="let the naive loop and llama.cpp stop at end of turn, as LocalLM does")
    ap.add_argument("--json", default="runs/bench/generation_throughput.json")
    args = ap.parse_args(argv)
    args.slots = [int(s) for s in args.slots.split(",") if s.strip()]
    batch = args.batch_size or args.prompts

    prompts = bench_prompts(args.task, args.prompts, args.seeds_per_prompt)
    config = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=0.0, seed=0)
    lm = load_lm(DEFAULT_MODEL, batch_size=batch)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    import torch

    tok = AutoTokenizer.from_pretrained(str(model_dir(DEFAULT_MODEL)))  # LocalLM's internals are not used
    longest = max(len(tok.apply_chat_template(p, add_generation_prompt=True, return_dict=True)["input_ids"])
                  for p in prompts)
    ctx_per_request = longest + args.max_new_tokens + 64  # 64: the servers' own template may differ a little
    eos_ids = tok.convert_tokens_to_ids(EOS_TOKENS)
    print(f"{args.prompts} {args.task} generate-stage prompts (longest {longest} tokens), greedy, "
          f"max_new_tokens {args.max_new_tokens}, {os.cpu_count()} CPUs", flush=True)

    rows = []
    int8 = load_lm(DEFAULT_MODEL, batch_size=batch, quantize="int8")
    auto = resolve_precision("auto")
    precisions = ["fp32", "bf16"] if bf16_fast("cpu") else ["fp32"]  # bf16 emulated on AVX2 is slower than fp32
    protege_rows = [(f"protege LocalLM {auto}, no prefix cache", lm, False, False, auto, auto),
                    (f"protege LocalLM {auto}, prefix cache + HF generate", lm, True, False, auto, auto)]
    protege_rows = [] if args.defaults_only else protege_rows
    protege_rows += [(f"protege LocalLM {p}", lm, True, True, p, p) for p in precisions]
    protege_rows += [(f"protege LocalLM int8{' + bf16' if p == 'bf16' else ''}", int8, True, True, p, "int8")
                     for p in precisions]
    print("  the Linear layers alone, on random activations (linear_ceiling.py):", flush=True)
    sizes = sorted({batch, 64, 128, 256, 512})
    ceiling = {p: linear_ceiling(decoding_layers(lm, p), sizes, precision=p) for p in precisions}
    ceiling["int8"] = linear_ceiling(int8.model, sizes)
    for backend, model, caching, shared, precision, layers in protege_rows:
        model.prefix_caching, model.shared_decoding = caching, shared and shared_decoding_supported(model.model)
        model.precision = precision
        before = dict(model.prompt_tokens)
        rows.append(measure(backend, batch, model.generate, prompts, config))
        spent = {k: model.prompt_tokens[k] - before[k] for k in before}  # includes the warm-up prompt's
        rows[-1]["prompt_tokens_run"] = spent["sent"] - spent["cached"] + spent["prefix_computed"]
        cap = next(c["ceiling_tok_s"] for c in ceiling[layers] if c["batch"] == batch)
        rows[-1].update(precision=precision, linear_layers=layers, linear_ceiling_tok_s=cap,
                        share_of_ceiling=round(rows[-1]["tok_s"] / cap, 3))
    lm.precision = int8.precision = None
    del int8
    if not (args.defaults_only or args.no_naive):
        naive = AutoModelForCausalLM.from_pretrained(str(model_dir(DEFAULT_MODEL)), dtype=torch.float32).eval()
        rows.append(measure("naive HF loop (fp32)", 1,
                            lambda ps, c, m=naive: naive_generate(m, tok, ps, c, args.stop_at_eos), prompts, config))
        del naive
    skipped = ["llama.cpp: --no-llama"] if args.no_llama else ["llama.cpp: --defaults-only"] if args.defaults_only else []
    if not (args.no_llama or args.defaults_only):
        logs = Path(args.json).parent / "generation_throughput_logs"  # the servers' own output, kept
        logs.mkdir(parents=True, exist_ok=True)
        more, skipped = llama_rows(args, prompts, config, ctx_per_request, eos_ids, logs)
        rows += more
    print()
    print(format_table(rows))
    servers = [r for r in rows if r["backend"] == "llama-server"]
    best = max(servers, key=lambda r: r["tok_s"]) if servers else None
    ours = max((r for r in rows if r["backend"].startswith("protege")), key=lambda r: r["tok_s"])
    for r in rows:
        if "prompt_tokens_run" in r:
            print(f"{r['backend']}: {r['prompt_tokens_run']} of {r['tokens_in']} prompt tokens run through the "
                  "model")
    for layers, found in ceiling.items():
        for c in found:
            print(f"{layers} Linear layers alone at batch {c['batch']}: {c['ms_per_step']} ms per step, "
                  f"{c['g_ops_per_s']} G ops/s: decoding through them cannot pass {c['ceiling_tok_s']} tok/s")
    for r in rows:
        if "share_of_ceiling" in r:
            print(f"{r['backend']}: {r['tok_s']} tok/s = {100 * r['share_of_ceiling']:.0f}% of its "
                  f"{r['linear_layers']} Linear-layer ceiling at batch {batch} ({r['linear_ceiling_tok_s']} tok/s)")
    if best:
        print(f"best llama-server: --parallel {best['parallel']}, {best['tok_s']} tok/s; {ours['backend']} is "
              f"{ours['tok_s'] / best['tok_s']:.2f}x that")
    for s in skipped:
        print(f"skipped {s}")
    result = {"config": {**vars(args), "batch_size": batch, "temperature": 0.0, "ctx_per_request": ctx_per_request},
              "model": DEFAULT_MODEL, "rows": rows, "linear_ceiling": ceiling, "best_llama_server": best,
              "skipped": skipped,
              "llama_cpp": {"version": llama_cpp_setup.VERSION, "cmake_flags": llama_cpp_setup.CMAKE_FLAGS},
              "cpus": os.cpu_count(), **provenance()}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
