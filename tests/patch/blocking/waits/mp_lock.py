# Python's multiprocessing.Lock is a named POSIX semaphore (sem_open; acquire is sem_wait or
# sem_timedwait): held by another process for 1.5 s while a thread of ours ticks 20 x 20 ms
# (issue 20). The ticks must end before the lock comes, as natively; a timed acquire that
# runs out answers False.
import multiprocessing as mp
import signal
import threading
import time


def hold(lock, ready):
    with lock:
        ready.set()
        time.sleep(1.5)


def main():
    signal.alarm(60)
    mp.set_start_method("fork")
    lock, ready = mp.Lock(), mp.Event()
    p = mp.Process(target=hold, args=(lock, ready))
    p.start()
    ready.wait()
    print("acquire(timeout=0.2) while held elsewhere:", lock.acquire(timeout=0.2))
    ticks = []

    def tick():
        for _ in range(20):
            time.sleep(0.02)
        ticks.append(time.monotonic())

    t = threading.Thread(target=tick)
    t.start()
    with lock:
        got = time.monotonic()
    t.join()
    p.join()
    print("ticks ended before the lock came:", ticks[-1] < got)
    print("holder's exit code:", p.exitcode)


if __name__ == "__main__":
    main()
