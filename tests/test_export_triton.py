"""rrn export --format triton: a model repository whose config.pbtxt Triton's own protobufs
parse, whose ONNX step carries two sequences side by side as Triton's sequence batcher would,
and a client example whose preprocessing is rrn's. (No Triton server runs here: no Docker
engine and no access to NGC, so the repository is checked piece by piece.)"""

import importlib.util

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
from google.protobuf import text_format  # noqa: E402

from rrn import load_model  # noqa: E402
from rrn.cli import main  # noqa: E402
from rrn.export_triton import idle_microseconds  # noqa: E402
from runs import save_run  # noqa: E402

CLASSES = ("A", "B", "C")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("triton")
    run = save_run(
        tmp / "run",
        skips=("block2", "block4"),
        skip_type="linear",
        frame_size=32,
        sample_every=10,
        classes=CLASSES,
        seed=5,
    )
    assert (
        main(
            [
                "export",
                str(run),
                "--format",
                "triton",
                "--out",
                str(tmp / "repo"),
                "--name",
                "action",
                "--max-batch-size",
                "4",
            ]
        )
        == 0
    )
    return load_model(run), tmp / "repo"


def _config(repo):
    return text_format.Parse(
        (repo / "action" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )


def test_the_config_parses_with_tritons_protobufs_and_says_what_the_model_is(exported):
    import onnx

    model, repo = exported
    cfg = _config(repo)
    assert cfg.name == "action" and cfg.backend == "onnxruntime" and cfg.max_batch_size == 4
    assert [(i.name, list(i.dims)) for i in cfg.input] == [("frame", [3, 32, 32])]
    assert [(o.name, list(o.dims), o.label_filename) for o in cfg.output] == [
        ("logits", [3], "labels.txt")
    ]
    seq = cfg.sequence_batching
    assert seq.max_sequence_idle_microseconds == idle_microseconds(0.4) == 5_000_000
    assert seq.oldest.max_candidate_sequences == 16
    graph = onnx.load(str(repo / "action" / "1" / "model.onnx")).graph
    onnx_in = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    onnx_out = {o.name for o in graph.output}
    shapes = model.term_shapes(32)
    assert len(seq.state) == len(shapes) == 2
    for state, shape in zip(seq.state, shapes):
        assert state.input_name in onnx_in and state.output_name in onnx_out
        assert list(state.dims) == list(shape[1:]) == onnx_in[state.input_name][1:]
        assert state.data_type == model_config_pb2.TYPE_FP32
        (initial,) = state.initial_state  # a repeated field in Triton's current protobufs
        assert initial.zero_data and list(initial.dims) == list(shape[1:])
    assert (repo / "action" / "labels.txt").read_text().split() == list(CLASSES)


def test_the_onnx_step_carries_two_sequences_side_by_side(exported):
    import onnxruntime as ort

    model, repo = exported
    cfg = _config(repo)
    session = ort.InferenceSession(str(repo / "action" / "1" / "model.onnx"))
    g = torch.Generator().manual_seed(0)
    videos = [torch.randn(5, 3, 32, 32, generator=g), torch.randn(5, 3, 32, 32, generator=g)]
    states = {s.input_name: np.zeros((2, *s.dims), np.float32) for s in cfg.sequence_batching.state}
    out_to_in = {s.output_name: s.input_name for s in cfg.sequence_batching.state}
    names = [o.name for o in session.get_outputs()]
    got = []
    for n in range(5):  # as Triton does: the state outputs of request n are the inputs of n+1
        frame = torch.stack([videos[0][n], videos[1][n]]).numpy()
        outputs = dict(zip(names, session.run(None, {"frame": frame, **states})))
        states = {out_to_in[k]: v for k, v in outputs.items() if k in out_to_in}
        got.append(outputs["logits"])
    got = np.stack(got, 1)  # (2, 5, K)
    for b in range(2):
        state, expected = None, []
        for n in range(5):
            logits, state = model.step(videos[b][n][None], state)
            expected.append(logits[0].detach().numpy())
        np.testing.assert_allclose(got[b], np.stack(expected), atol=1e-4, rtol=1e-4)


def test_the_client_example_preprocesses_as_rrn_does(exported, tmp_path):
    from rrn.data.synth import write_video

    model, repo = exported
    spec = importlib.util.spec_from_file_location("client_example", repo / "client_example.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    rgb = np.random.default_rng(0).integers(0, 256, (45, 61, 3), dtype=np.uint8)
    expected = model.inputs.transform()(rgb[None])[0].numpy()
    np.testing.assert_allclose(client.preprocess(rgb), expected, atol=1e-5)
    assert client.CLASSES == list(CLASSES) and client.MODEL == "action"
    args = client.parse_args(["v.mp4", "--url", "host:8001", "--sequence-id", "7"])
    assert (args.url, args.sequence_id) == ("host:8001", 7)
    frames = np.random.default_rng(1).integers(0, 256, (30, 36, 48, 3), dtype=np.uint8)
    video = write_video(tmp_path / "v.avi", frames, fps=25)
    times = [round(t, 2) for t, _ in client.sampled_frames(str(video))]
    assert times == [0.0, 0.4, 0.8]  # every 10th frame of 25 fps


def test_a_name_triton_would_refuse_is_one_line(exported, tmp_path, capsys):
    model, _ = exported
    rc = main(
        [
            "export",
            str(model.checkpoint),
            "--format",
            "triton",
            "--out",
            str(tmp_path / "r"),
            "--name",
            "bad name/",
        ]
    )
    assert rc == 2 and "a Triton model name is 1-128 characters" in capsys.readouterr().err
