"""The serving engine: iteration-level (continuous) batching over a memory model.

Each iteration, as in Orca and vLLM:

1. Requests that have arrived join the waiting queue (first come, first served).
2. Every running request decodes one token, so its KV grows by one slot. A request that
   cannot grow causes a preemption by recompute (vLLM's policy): the most recently admitted
   running request releases everything and goes back to the front of the queue; repeat until
   the grow succeeds or the request itself was the one preempted.
3. If nothing was preempted, waiting requests are admitted in order while ``max_num_seqs``,
   ``max_batched_tokens`` and memory allow: a prefill stores the prompt's KV (and, for a
   request coming back after a preemption, that of the tokens it had generated) and yields
   its next token. The first refusal stops admission (no request overtakes another).
4. The iteration takes the cost model's time; requests that produced their last token
   release their memory.

A request holds prompt + generated - 1 slots after producing a token (the newest token's KV
is written when it is fed back), so prompt + output - 1 at the end. Monolithic memory reserves
at admission by ``reservation``: ``max`` (max_model_len), ``pow2`` (the next power of two of
prompt + output) or ``oracle`` (exactly what the request will hold), the Orca variants of the
vLLM paper. A request that could never fit (it needs more than the whole pool, or its prompt
exceeds ``max_batched_tokens``) is rejected with the reason, not retried.

The engine calls the allocator only when a request needs more than its ``headroom`` (room in
its last block or reservation): a request's next grow is scheduled for the iteration that
exhausts it. So the work per iteration is proportional to the memory events in it, not to
the batch size; ``stored`` is kept by the engine (tokens the allocator has not been told of
yet sit in slots it already holds). A model that keeps no headroom at all (``ideal``) is
grown by one bulk call per iteration (``grow_each``) instead.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from kvsim.allocators.base import Allocator
from kvsim.engines.cost import CostModel
from kvsim.errors import ConfigError, check_int
from kvsim.recorder import StepRecorder
from kvsim.workloads.requests import RequestTrace

RESERVATIONS = ("oracle", "pow2", "max")

#: Columns recorded per iteration: ``running`` is the batch (requests in the iteration),
#: ``waiting`` the queue after it; times are kept in microseconds, as integers.
ITERATION_FIELDS: tuple[str, ...] = (
    "step", "time_us", "dt_us", "running", "waiting", "batch_tokens", "prefill_tokens",
    "preempted", "stored", "held", "reserved", "largest_free", "compressed_blocks",
    "compressed_tokens",
)

# Request states, as recorded per request.
WAITING, RUNNING, DONE, REJECTED = 0, 1, 2, 3


@dataclass
class ServingRun:
    """What a serving run produced: per-iteration series, per-request outcomes, counts."""

    allocator: str
    capacity: int
    series: dict[str, np.ndarray]
    requests: dict[str, np.ndarray]
    counts: dict[str, int] = field(default_factory=dict)
    rejection_reasons: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    compression_ratio: float = 1.0  # of the model: what a compressed token occupies


def reservation_slots(policy: str, prompt: int, output: int, max_model_len: int) -> int:
    """Slots a monolithic model sets aside for a request at admission."""
    final = prompt + output - 1
    if policy == "oracle":
        return final
    if policy == "pow2":
        return 1 << (prompt + output - 1).bit_length()
    return max_model_len


class ServingEngine:
    """Runs requests through one memory model with continuous batching."""

    def __init__(self, cost: CostModel, *, max_num_seqs: int = 256,
                 max_batched_tokens: int | None = None, reservation: str = "oracle",
                 record_every: int = 1) -> None:
        self.cost = cost
        self.max_num_seqs = check_int("serving.max_num_seqs", max_num_seqs, minimum=1)
        max_len = cost.model.max_model_len
        self.max_batched_tokens = check_int(
            "serving.max_batched_tokens",
            max_len if max_batched_tokens is None else max_batched_tokens, minimum=1)
        if reservation not in RESERVATIONS:
            raise ConfigError("serving.reservation", reservation,
                              "one of " + ", ".join(RESERVATIONS))
        self.reservation = reservation
        self.record_every = check_int("record_every", record_every, minimum=1)

    def run(self, trace: RequestTrace, allocator: Allocator) -> ServingRun:
        started = time.perf_counter()
        n = len(trace)
        arrival = trace.arrival.tolist()
        prompt = trace.prompt.tolist()
        output = trace.output.tolist()
        max_len = self.cost.model.max_model_len
        final = [p + o - 1 for p, o in zip(prompt, output)]
        if allocator.reserves_ahead:
            reserve = [reservation_slots(self.reservation, p, o, max_len)
                       for p, o in zip(prompt, output)]
        else:
            reserve = final

        generated = [0] * n  # tokens produced so far (kept across preemptions)
        base = [0] * n  # KV written by the request's latest prefill
        admitted_at = [0] * n  # iteration of the latest admission
        generated_at_admission = [0] * n
        synced_at = [0] * n  # iteration of the latest grow: later tokens are not told yet
        epoch = [0] * n  # bumps on preemption: older scheduled events are stale
        first_token = [np.nan] * n
        finish = [np.nan] * n
        preemptions = [0] * n
        state = [WAITING] * n
        reasons: dict[int, str] = {}

        grow = allocator.grow
        grow_each = allocator.grow_each
        bulk = not allocator.keeps_headroom  # grow everyone every iteration, in one call
        release = allocator.release
        headroom = allocator.headroom
        snapshot = allocator.snapshot
        capacity = allocator.capacity
        iteration_seconds = self.cost.iteration_seconds
        max_seqs = self.max_num_seqs
        max_tokens = self.max_batched_tokens

        running: dict[int, None] = {}  # admission order: the last is the next victim
        waiting: deque[int] = deque()
        # iteration -> [(admission number, request, epoch)]: sorting a bucket puts its
        # requests in admission order, oldest first.
        sync_due: dict[int, list[tuple[int, int, int]]] = {}
        done_due: dict[int, list[tuple[int, int]]] = {}
        done_at = [0] * n  # the iteration of the request's last token, once admitted
        admission = [0] * n  # admission number of the latest admission
        kv_total = 0  # slots the running requests' KV takes (the true `stored`)
        final_running = 0  # sum of `final` over running requests
        recorder = StepRecorder(ITERATION_FIELDS)
        extend = recorder.extend
        every = self.record_every

        def schedule_sync(r: int, k: int) -> None:
            """After a grow at iteration k: the next one falls due when headroom runs out."""
            due = k + headroom(r) + 1
            if due <= done_at[r]:
                bucket = sync_due.get(due)
                if bucket is None:
                    sync_due[due] = [(admission[r], r, epoch[r])]
                else:
                    bucket.append((admission[r], r, epoch[r]))

        admissions = 0

        def preempt(victim: int, k: int) -> None:
            nonlocal kv_total, final_running
            release(victim)
            del running[victim]
            # Produced one token at admission and one per iteration since, up to k - 1.
            generated[victim] = generated_at_admission[victim] + (k - admitted_at[victim])
            kv_total -= base[victim] + (k - 1 - admitted_at[victim])
            final_running -= final[victim]
            epoch[victim] += 1
            preemptions[victim] += 1
            state[victim] = WAITING
            waiting.appendleft(victim)

        t = arrival[0] if n else 0.0
        next_arrival = 0
        k = 0
        total_preemptions = 0
        completed = 0
        rejected = 0
        output_tokens = 0
        while completed + rejected < n:
            # 1. Arrivals (a request that can never fit is turned away at the door).
            if not running and not waiting and next_arrival < n and arrival[next_arrival] > t:
                t = arrival[next_arrival]
            while next_arrival < n and arrival[next_arrival] <= t:
                r = next_arrival
                next_arrival += 1
                need = max(final[r], reserve[r])
                if need > capacity:
                    reasons[r] = f"needs {need} slots; the pool holds {capacity}"
                elif prompt[r] > max_tokens:
                    reasons[r] = (f"prompt of {prompt[r]} tokens exceeds "
                                  f"max_batched_tokens={max_tokens}")
                else:
                    waiting.append(r)
                    continue
                state[r] = REJECTED
                rejected += 1

            # 2. Decode: every running request needs one more slot; some need the allocator.
            preempted_now = 0
            due = sync_due.pop(k, None)
            if bulk and running:
                order = list(running)  # admission order; victims come off the end
                grown = 0
                while True:
                    grown += grow_each(order, grown)
                    if grown == len(order):
                        break
                    victim = order.pop()
                    preempt(victim, k)
                    preempted_now += 1
                    if grown == len(order):
                        break
            elif due:
                due.sort()
                for _, r, ep in due:
                    if ep != epoch[r] or state[r] != RUNNING:
                        continue
                    pending = k - synced_at[r]
                    while not grow(r, pending, reserve[r]):
                        victim = next(reversed(running))
                        preempt(victim, k)
                        preempted_now += 1
                        if victim == r:
                            break
                    if state[r] == RUNNING:
                        synced_at[r] = k
                        nxt = k + headroom(r) + 1  # schedule_sync, inlined: the hot path
                        if nxt <= done_at[r]:
                            bucket = sync_due.get(nxt)
                            if bucket is None:
                                sync_due[nxt] = [(admission[r], r, ep)]
                            else:
                                bucket.append((admission[r], r, ep))
            decoding = len(running)
            kv_total += decoding
            total_preemptions += preempted_now

            # 3. Admission, first come first served, if nothing was preempted.
            prefill_tokens = 0
            admitted: list[int] = []
            if not preempted_now:
                while waiting and len(running) < max_seqs:
                    r = waiting[0]
                    tokens = prompt[r] + generated[r]
                    if tokens > max_tokens:
                        if prefill_tokens:
                            break
                        waiting.popleft()  # recompute after a preemption can never fit
                        reasons[r] = (f"recomputing {tokens} tokens after a preemption exceeds "
                                      f"max_batched_tokens={max_tokens}")
                        state[r] = REJECTED
                        rejected += 1
                        continue
                    if prefill_tokens + tokens > max_tokens:
                        break
                    if not grow(r, tokens, reserve[r]):
                        if running:
                            break
                        # Refused by an empty pool (a paged watermark): it never will fit.
                        waiting.popleft()
                        reasons[r] = (f"{tokens} tokens do not fit in the empty pool "
                                      f"beside its watermark")
                        state[r] = REJECTED
                        rejected += 1
                        continue
                    waiting.popleft()
                    running[r] = None
                    state[r] = RUNNING
                    base[r] = tokens
                    admitted_at[r] = synced_at[r] = k
                    generated_at_admission[r] = generated[r]
                    admission[r] = admissions
                    admissions += 1
                    done_at[r] = k + output[r] - generated[r] - 1
                    kv_total += tokens
                    final_running += final[r]
                    prefill_tokens += tokens
                    admitted.append(r)
                    if generated[r] + 1 < output[r]:
                        if not bulk:
                            schedule_sync(r, k)
                        done_due.setdefault(done_at[r], []).append((r, epoch[r]))

            if not running:  # nothing could run: wait for the next arrival
                if next_arrival < n:
                    t = max(t, arrival[next_arrival])
                    continue
                break

            # 4. The iteration's time; tokens produced; completions release their memory.
            batch_tokens = prefill_tokens + decoding
            dt = iteration_seconds(batch_tokens, kv_total)
            t += dt
            output_tokens += decoding + len(admitted)
            for r in admitted:
                if generated[r] == 0:
                    first_token[r] = t
            finishing = [r for r, ep in done_due.pop(k, ()) if ep == epoch[r]
                         and state[r] == RUNNING]
            finishing += [r for r in admitted if generated[r] + 1 >= output[r]]
            for r in finishing:
                release(r)
                del running[r]
                kv_total -= base[r] + (k - admitted_at[r])
                final_running -= final[r]
                generated[r] = output[r]
                finish[r] = t
                state[r] = DONE
                completed += 1

            if k % every == 0:
                alloc_stored, held, alloc_reserved, largest, cblocks, ctokens = snapshot()
                if alloc_reserved:  # reserved ahead: split off what running requests will use
                    unsynced = kv_total - alloc_stored
                    reserved = min(alloc_reserved - unsynced, final_running - kv_total)
                else:
                    reserved = 0
                extend((k, round(t * 1e6), round(dt * 1e6), decoding + len(admitted), len(waiting),
                        batch_tokens, prefill_tokens, preempted_now, kv_total, held,
                        max(reserved, 0), largest, cblocks, ctokens))
                if not k & 4095:
                    recorder.pack()
            k += 1

        series = recorder.columns()
        series["time"] = series.pop("time_us") / 1e6
        series["dt"] = series.pop("dt_us") / 1e6
        requests = {
            "arrival": np.asarray(arrival, dtype=np.float64),
            "prompt": np.asarray(prompt, dtype=np.int64),
            "output": np.asarray(output, dtype=np.int64),
            "first_token": np.asarray(first_token, dtype=np.float64),
            "finish": np.asarray(finish, dtype=np.float64),
            "preemptions": np.asarray(preemptions, dtype=np.int64),
            "state": np.asarray(state, dtype=np.int8),
        }
        counts = {
            "requests": n,
            "completed": completed,
            "rejected": rejected,
            "preemptions": total_preemptions,
            "iterations": k,
            "output_tokens": output_tokens,
            **allocator.counters(),
        }
        return ServingRun(allocator.name, capacity, series, requests, counts, reasons,
                          time.perf_counter() - started, allocator.compression_ratio)
