"""cffi lays out the structs from rewire.h itself; this holds it to the
compiler's layout (sizes and every field's offset), where gcc is there."""
import os
import shutil
import subprocess

import pytest

import rewire
from rewire._lib import ffi

STRUCTS = ["rw_model_config", "rw_layer_info", "rw_param_view", "rw_gpt_config", "rw_lm_eval",
           "rw_csv_options", "rw_train_config", "rw_progress", "rw_epoch_stats",
           "rw_memory_estimate", "rw_dst_config", "rw_dst_totals", "rw_topology_stats",
           "rw_eval_result", "rw_prune_config", "rw_prune_schedule", "rw_prune_epoch",
           "rw_nm_train_config", "rw_lm_schedule", "rw_lm_report", "rw_run_epoch",
           "rw_run_config", "rw_run_result", "rw_kernel_info"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_struct_layouts_match_the_compiler(tmp_path):
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "rewire.h"', 'int main(void) {']
    expect = []
    for s in STRUCTS:
        lines.append('printf("%%zu\\n", sizeof(%s));' % s)
        expect.append(ffi.sizeof(s))
        for name, f in ffi.typeof(s).fields:
            lines.append('printf("%%zu\\n", offsetof(%s, %s));' % (s, name))
            expect.append(f.offset)
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["gcc", "-I", os.path.dirname(rewire.HEADER_PATH), str(src), "-o", str(exe)],
                   check=True)
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True,
                                          check=True).stdout.split()]
    assert got == expect
