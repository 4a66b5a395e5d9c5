"""The bundled Qwen2.5-Coder teachers (after `make teachers`): checked, converted once, and they write code that
passes its tests; both share one tokenizer, so logit distillation between them is possible."""
import pytest

from markers import requires_teachers
from protege.models.base import GenerationConfig
from protege.models.resolve import load_lm
from protege.tasks.kinds import code
from protege.tasks.spec import Example, TaskSpec

pytestmark = [requires_teachers, pytest.mark.real_model]

TESTS = "assert is_prime(2)\nassert is_prime(97)\nassert not is_prime(1)\nassert not is_prime(91)"


@pytest.mark.parametrize("size", ["0.5b", "1.5b"])
def test_a_real_teacher_writes_a_function_that_passes_its_tests(size):
    lm = load_lm(f"bundled:qwen2.5-coder-{size}-instruct")
    spec = TaskSpec(name="t", kind="code", description="Write a Python function.", seeds=[], test={"path": "x"})
    item = Example(id="i", text=f"Write `is_prime(n)`: True when n is prime.\n{TESTS}", tests=TESTS)
    out = lm.generate([code.prompt(spec, item)], GenerationConfig(max_new_tokens=160, temperature=0.0))[0]
    scores = code.score_items(spec, [item], [code.parse(spec, out.text)], allow_code_execution=True)
    assert scores[0]["pass@1"] == 1.0, out.text


def test_both_teachers_share_one_vocabulary():
    small, large = (load_lm(f"bundled:qwen2.5-coder-{s}-instruct") for s in ("0.5b", "1.5b"))
    assert len(small.tokenizer) == len(large.tokenizer)
    assert small.tokenizer.get_vocab() == large.tokenizer.get_vocab()
    assert small.model.config.vocab_size == large.model.config.vocab_size == 151936
