"""The sandbox's attack tests run twice: on the standard library alone, and with an installed package exposed
(`packages=["numpy"]`, imported before the attack), since exposing packages must leave every layer in force."""
import pytest


@pytest.fixture(params=[None, ["numpy"]], ids=["stdlib", "numpy-exposed"])
def packages(request):
    return request.param
