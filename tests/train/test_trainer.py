"""The resumable trainer: the loss falls, an interrupted run resumes where it stopped, settings are checked."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.train.trainer import TrainSettings, read_history, train


def _data(seed=0):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype=np.float32)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16), tf.data.Dataset.from_tensor_slices((x, y)).batch(64)


def _model():
    import keras

    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])


class _Interrupt:
    """A Keras callback that raises after a given epoch, like a killed job."""

    def __new__(cls, after_epoch):
        import keras

        class Interrupt(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == after_epoch:
                    raise KeyboardInterrupt

        return Interrupt()


def test_loss_falls_and_files_are_written(tmp_path):
    train_ds, val_ds = _data()
    result = train(_model(), train_ds, val_ds, tmp_path / "run", TrainSettings(epochs=6, learning_rate=0.2))
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 6 and losses[-1] < 0.1 * losses[0]
    assert result.best_model.is_file() and result.last_model.is_file()
    assert (tmp_path / "run" / "tensorboard").is_dir()


def test_interrupted_run_resumes_without_repeating_epochs(tmp_path):
    train_ds, val_ds = _data()
    settings = TrainSettings(epochs=5, learning_rate=0.05)
    with pytest.raises(KeyboardInterrupt):
        train(_model(), train_ds, val_ds, tmp_path / "run", settings, extra_callbacks=[_Interrupt(1)])
    assert [row["epoch"] for row in read_history(tmp_path / "run")] == [0, 1]
    result = train(_model(), train_ds, val_ds, tmp_path / "run", settings)
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3, 4]
    with pytest.raises(CkmsimError, match="other settings"):
        train(_model(), train_ds, val_ds, tmp_path / "run", TrainSettings(epochs=7, learning_rate=0.05))


@pytest.mark.parametrize("field, value", [("epochs", 0), ("learning_rate", -1.0), ("lr_factor", 1.5),
                                          ("steps_per_epoch", 0), ("seed", -1), ("seed", 1.5)])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(CkmsimError, match=field):
        TrainSettings(**{field: value})


def test_read_history_leaves_out_the_columns_keras_wrote_as_na(tmp_path):
    # Keras' CSVLogger writes "NA" for the val_* columns of an epoch without validation data
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,0.5,NA\n1,0.25,0.3\n")
    assert read_history(tmp_path) == [{"epoch": 0.0, "loss": 0.5}, {"epoch": 1.0, "loss": 0.25, "val_loss": 0.3}]
