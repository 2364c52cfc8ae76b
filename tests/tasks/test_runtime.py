"""What a worker process sets up for itself: the reference search's threads."""

from __future__ import annotations

from collections.abc import Iterator

import faiss
import pytest

from core.settings import Settings
from tasks.runtime import cap_search_threads


@pytest.fixture()
def omp_threads() -> Iterator[None]:
    """Give back the process's OpenMP thread count after the test."""
    before = faiss.omp_get_max_threads()
    yield
    faiss.omp_set_num_threads(before)


@pytest.mark.usefixtures("omp_threads")
def test_a_cpu_worker_searches_on_one_thread_unless_search_threads_says_otherwise() -> None:
    faiss.omp_set_num_threads(2)
    cap_search_threads(Settings(embed_device="cpu"))
    assert faiss.omp_get_max_threads() == 1
    cap_search_threads(Settings(embed_device="cpu", search_threads=2))
    assert faiss.omp_get_max_threads() == 2


@pytest.mark.usefixtures("omp_threads")
def test_a_gpu_worker_leaves_the_search_every_core_unless_search_threads_says_otherwise() -> None:
    faiss.omp_set_num_threads(2)
    cap_search_threads(Settings(embed_device="cuda"))
    assert faiss.omp_get_max_threads() == 2
    cap_search_threads(Settings(embed_device="cuda", search_threads=1))
    assert faiss.omp_get_max_threads() == 1
