"""Pieces shared by the results-table scripts (dst_table.py, nm_table.py,
prune_table.py, lr_select.py, nm_kernels.py): the flags every table of
trainings takes, running or reusing one training, the closing line's
fields, mean and standard deviation, and replacing a marked section of a
Markdown file. Standard library only."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

RESULT = re.compile(r"^result: (.*)$", re.M)


def training_parser(doc, epochs_help=None):
    """An argument parser for a script of trainings, with the flags they all
    take: --rewire, --data, --hidden, --epochs, --seeds."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rewire", default="build/rewire", help="the rewire binary (default build/rewire)")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--hidden", default="1000,1000,1000")
    p.add_argument("--epochs", type=int, default=10, help=epochs_help)
    p.add_argument("--seeds", default="1,2,3")
    return p


def fields(line):
    """The key=value pairs of a closing 'result:' line; numbers as floats."""
    out = {}
    for kv in line.split():
        k, v = kv.split("=", 1)
        try:
            out[k] = float(v)
        except ValueError:
            out[k] = v
    return out


def result_line(runs, name, cmd, compose_only):
    """The closing line of run `name`: read from runs/name.result when it is
    there, else (unless compose_only, which gives None) from running cmd,
    and kept in that file. A failed run stops the script with its stderr."""
    result_path = os.path.join(runs, name + ".result")
    if os.path.exists(result_path):
        with open(result_path) as f:
            return f.read()
    if compose_only:
        return None
    start = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
    line = RESULT.search(out.stdout).group(1)
    with open(result_path, "w") as f:
        f.write(line)
    print(f"{name}: {line}  ({time.time() - start:.0f}s)", file=sys.stderr, flush=True)
    return line


def mean_std(xs):
    """Mean and sample standard deviation (0 for a single value)."""
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)


def write_section(path, begin, end, text):
    """Replaces the part of path between the markers begin and end with text
    (appending the marked text when the markers are missing), keeping the
    rest of the file."""
    old = open(path).read() if os.path.exists(path) else ""
    block = f"{begin}\n{text}{end}\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        new = head + block + ("\n" + tail if tail else "")
    else:
        new = old + ("\n" if old and not old.endswith("\n\n") else "") + block
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(new)
