"""rewire.prune: one-shot pruning of a trained model (`rewire prune`)."""

from ._lib import check, ffi, lib
from .data import Dataset
from .model import Model, choice


def prune(model, sparsity, *, criterion="magnitude", scope="layer", calibration=None,
          calibration_count=0):
    """Prunes `model` in place to `sparsity` (of in x out per layer): keeps
    the weights of largest score per layer ('layer'; Wanda per output row)
    or over the whole model ('global'), storing every pruned layer as CSR.
    criterion 'magnitude' scores |w|; 'wanda' scores |w| * ||x_in|| over
    `calibration` (a rewire.Dataset; calibration_count of its samples, 0:
    all). Returns the model."""
    if not isinstance(model, Model):
        raise TypeError("prune takes a rewire.Model, got %s" % type(model).__name__)
    c = ffi.new("rw_prune_config *")
    c.sparsity = float(sparsity)
    c.criterion = choice(criterion, ("magnitude", "wanda"), "criterion")
    c.scope = choice(scope, ("layer", "global"), "scope")
    if calibration is not None:
        if not isinstance(calibration, Dataset):
            raise TypeError("calibration must be a rewire.Dataset")
        c.calibration = calibration._ptr()
    c.calibration_count = int(calibration_count)
    model._topology_change("prune")
    check(lib.rw_model_prune(model._ptr(), c))
    return model
