import queue
import threading


def parallel_map(fn, items, n_workers=2):
    tasks, results = queue.Queue(), queue.Queue()
    for i, item in enumerate(items):
        tasks.put((i, item))

    def work():
        while not tasks.empty():
            i, item = tasks.get()
            results.put((i, fn(item)))

    for _ in range(n_workers):
        threading.Thread(target=work, daemon=True).start()
    out = dict(results.get() for _ in items)
    return [out[i] for i in range(len(items))]
