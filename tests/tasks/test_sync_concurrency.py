"""The changes feed and positions under concurrent writers (separate connections, real
transactions), against a model of the task set."""

import random
import threading
import time
from collections.abc import Callable

import pytest
from django.db import close_old_connections, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks import selectors, services
from tasks.models import Task
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


class Replica:
    """A client's copy of the task set, built only from the changes feed."""

    def __init__(self, user):
        self.user, self.cursor, self.tasks = user, None, {}
        self.seen_versions: dict[str, int] = {}

    def pull(self) -> None:
        while True:
            params = {"limit": "7"} if self.cursor is None else {"since": self.cursor, "limit": "7"}
            changes = selectors.task_changes(user=self.user, params=params)
            for row in changes.tasks:
                task = dict(row) if isinstance(row, dict) else row._asdict()
                task_id = str(task["id"])
                # A task's versions arrive in order: the feed never goes back in time.
                assert task["version"] >= self.seen_versions.get(task_id, 0)
                self.seen_versions[task_id] = task["version"]
                self.tasks[task_id] = (task["title"], task["completed"], task["version"])
            for task_id in changes.deleted:
                self.tasks.pop(task_id, None)
            self.cursor = changes.cursor
            if not changes.has_more:
                return


def truth(user) -> dict[str, tuple]:
    rows = Task.objects.filter(user=user).values_list("id", "title", "completed", "version")
    return {str(pk): (title, completed, version) for pk, title, completed, version in rows}


def run_concurrently(workers: list[Callable[[], None]], reader: Callable[[], None]) -> None:
    """Run the writers in threads while `reader` runs over and over in another."""
    errors: list[BaseException] = []
    done = threading.Event()

    def guarded(work: Callable[[], None], repeat: bool = False) -> None:
        try:
            while True:
                work()
                if not repeat or done.is_set():
                    break
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=guarded, args=(work,)) for work in workers]
    reading = threading.Thread(target=guarded, args=(reader, True))
    reading.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    done.set()
    reading.join(timeout=120)
    assert not errors, errors


OPERATIONS = st.sampled_from(["create", "update", "toggle", "delete", "slow_batch", "reorder"])


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    scripts=st.lists(st.lists(OPERATIONS, min_size=1, max_size=6), min_size=2, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_the_feed_loses_nothing_under_concurrent_writers(scripts, seed):
    """Writers replay random scripts at once, some holding their transaction open after
    writing (a commit arriving late); a reader pulls the feed all along. Its replica,
    caught up at the end, must be exactly the task set."""
    user = UserFactory()
    initial = [str(task.pk) for task in TaskFactory.create_batch(4, user=user)]
    replica = Replica(user)

    def writer(script: list[str], rng: random.Random) -> Callable[[], None]:
        def work() -> None:
            for op in script:
                ids = [
                    str(pk) for pk in Task.objects.filter(user=user).values_list("pk", flat=True)
                ]
                ids = ids or initial
                target = rng.choice(ids)
                try:
                    if op == "create":
                        services.task_create(user=user, title=f"new {rng.random():.6f}")
                    elif op == "update":
                        services.task_update(user=user, pk=target, title=f"t {rng.random():.6f}")
                    elif op == "toggle":
                        services.task_set_completed(user=user, pk=target, completed=None)
                    elif op == "delete":
                        services.task_delete(user=user, pk=target)
                    elif op == "reorder":
                        services.task_reorder(user=user, ids=rng.sample(ids, min(2, len(ids))))
                    else:  # a batch whose commit comes late, after others queued behind it
                        with transaction.atomic():
                            services.task_update(user=user, pk=target, title="slow")
                            services.task_create(user=user, title="slow new")
                            time.sleep(rng.uniform(0.05, 0.15))
                except (Task.DoesNotExist, services.UnknownTasks):
                    pass  # deleted meanwhile by another writer: a real client's race too
                time.sleep(rng.uniform(0, 0.01))

        return work

    rng = random.Random(seed)
    workers = [writer(script, random.Random(rng.random())) for script in scripts]
    run_concurrently(workers, replica.pull)
    replica.pull()
    assert replica.tasks == truth(user)


def test_a_late_commit_is_not_skipped():
    """T1 writes and holds its transaction; T2 writes another task meanwhile. A reader in
    between sees neither; afterwards it sees both, whatever order they commit in."""
    user = UserFactory()
    first, second = TaskFactory.create_batch(2, user=user)
    replica = Replica(user)
    replica.pull()
    written, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                services.task_update(user=user, pk=first.pk, title="late")
                written.set()
                release.wait(30)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    def quick_writer() -> None:
        try:
            services.task_update(user=user, pk=second.pk, title="quick")
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    slow = threading.Thread(target=slow_writer)
    slow.start()
    assert written.wait(30)
    quick = threading.Thread(target=quick_writer)
    quick.start()
    time.sleep(0.2)  # the quick writer now waits for the user's lock
    replica.pull()
    assert {title for title, _, _ in replica.tasks.values()} == {first.title, second.title}
    release.set()
    slow.join(30)
    quick.join(30)
    assert not errors, errors
    replica.pull()
    assert replica.tasks == truth(user)
    assert {title for title, _, _ in replica.tasks.values()} == {"late", "quick"}


def test_reorders_and_creates_at_once_keep_positions_unique_and_dense():
    user = UserFactory()
    for position in range(8):
        TaskFactory(user=user, position=position)
    rng = random.Random(7)

    def reorderer(seed: int) -> Callable[[], None]:
        local = random.Random(seed)

        def work() -> None:
            for _ in range(6):
                ids = list(Task.objects.filter(user=user).values_list("pk", flat=True))
                services.task_reorder(user=user, ids=local.sample(ids, local.randint(2, len(ids))))

        return work

    def creator() -> None:
        for _ in range(6):
            services.task_create(user=user, title="appended")

    workers = [reorderer(rng.randrange(10**6)) for _ in range(3)] + [creator, creator]
    run_concurrently(workers, lambda: None)
    positions = sorted(Task.objects.filter(user=user).values_list("position", flat=True))
    assert positions == list(range(8 + 12))


def test_concurrent_batches_and_single_writes_never_deadlock():
    """Batches take the user's lock before any task's row, as single writes do."""
    user = UserFactory()
    tasks = [str(task.pk) for task in TaskFactory.create_batch(6, user=user)]

    def batcher(order: list[str]) -> Callable[[], None]:
        def work() -> None:
            for _ in range(5):
                operations = [{"op": "complete", "id": pk, "completed": None} for pk in order]
                services.task_batch(user=user, operations=operations)

        return work

    def toggler() -> None:
        for _ in range(10):
            for pk in reversed(tasks):
                services.task_set_completed(user=user, pk=pk, completed=None)

    workers = [batcher(tasks), batcher(tasks[::-1]), toggler, toggler]
    run_concurrently(workers, lambda: None)
    versions = sorted(Task.objects.filter(user=user).values_list("version", flat=True))
    assert versions == [1 + 2 * 5 + 2 * 10] * 6  # every write counted once
