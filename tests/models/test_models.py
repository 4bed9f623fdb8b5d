import pytest
import torch

from ramanid.errors import ModelError
from ramanid.models import MODELS, build_model, count_parameters, get_model_spec, user_models
from ramanid.models.ramannet import ramannet, ramannet_loop

# Trainable parameters for 1024-point spectra and 67 classes, counted by hand from each paper:
PARAMETERS_1024_67 = {
    # 39 windows x (50*25 + 25) + BN 39*25*2 + (975*512 + 512) + BN 1024 + (512*256 + 256) + BN 512 + 256*67 + 67
    "ramannet": 39 * 1275 + 1950 + 499_712 + 1024 + 131_328 + 512 + 17_219,
    "ramannet_loop": 701_470,
    # conv 16@21 (352) + BN 32, 32@11 (5,664) + BN 64, 64@5 (10,304) + BN 128; 64*121 -> 2048 (15,861,760); 2048 -> 67
    "liu2017_cnn": 352 + 32 + 5_664 + 64 + 10_304 + 128 + 15_861_760 + 137_283,
    # stem 320 + 128; block 1: 64->100 with 1x1 shortcut; 11 blocks 100->100 (5 of them with a strided 1x1
    # shortcut); flatten 100*32 -> 67
    "ho2019_resnet": 448
    + (32_000 + 200 + 50_000 + 200 + 6_400 + 200)
    + 5 * (50_000 + 200 + 50_000 + 200 + 10_000 + 200)
    + 6 * (50_000 + 200 + 50_000 + 200)
    + 3_200 * 67
    + 67,
    # stem 64@7 (512) + BN 128; six blocks of two separable convolutions (64*3+64 + 64*64+64, twice), two BNs
    # and a gate; a strided 1x1 projection in blocks 3 and 5 (4,160 each); length 509 -> 255 -> 128, so
    # 64*128 -> 32 (262,176) and 32 -> 67
    "rezero_cnn": 640 + 6 * (2 * (256 + 4_160) + 256 + 1) + 2 * 4_160 + 262_176 + 2_211,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_shapes(name):
    model = build_model(name, 1024, 7).eval()
    assert model(torch.randn(5, 1024)).shape == (5, 7)


@pytest.mark.parametrize("name, expected", PARAMETERS_1024_67.items())
def test_parameter_counts_match_the_papers(name, expected):
    assert count_parameters(build_model(name, 1024, 67)) == expected


def test_batched_blocks_equal_the_loop():
    torch.manual_seed(0)
    batched = ramannet(1024, 5)
    batched.train()
    batched(torch.randn(64, 1024))  # move BatchNorm statistics off their initial values
    batched.eval()
    loop = ramannet_loop(1024, 5).load_batched(batched).eval()
    x = torch.randn(16, 1024)
    torch.testing.assert_close(loop(x), batched(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loop.embed(x), batched.embed(x), rtol=1e-5, atol=1e-5)


def test_folded_weights_follow_the_parameters_and_keep_input_gradients():
    torch.manual_seed(0)
    model, other = ramannet(1024, 5), ramannet(1024, 5)
    for net in (model, other):
        net.train()
        net(torch.randn(64, 1024))
        net.eval()
    x = torch.randn(3, 1024)
    with torch.inference_mode():
        model(x)  # folded (and kept) inside inference mode
    model.load_state_dict(other.state_dict())  # in place: the kept weights are stale now
    loop = ramannet_loop(1024, 5).load_batched(other).eval()
    torch.testing.assert_close(model(x), loop(x), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        model.classifier.bias += 1.0
    torch.testing.assert_close(model(x), loop(x) + 1.0, rtol=1e-5, atol=1e-5)
    x.requires_grad_(True)
    model(x)[:, 0].sum().backward()  # attributions reach the input through the kept weights
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_ramannet_embedding_is_unit_length():
    emb = ramannet(1024, 3).eval().embed(torch.randn(4, 1024))
    assert emb.shape == (4, 256)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))


def test_seed_attention_is_transductive():
    model = build_model("seed_attention", 100, 1).eval()
    x = torch.randn(6, 100)
    alone = model(x[:3])
    together = model(x)[:3]
    assert not torch.allclose(alone, together)


def test_attention_resnet_sees_position():
    model = build_model("attention_resnet", 256, 2).eval()
    peak = torch.zeros(1, 256)
    peak[0, 60:64] = 1
    moved = torch.roll(peak, 100, dims=1)
    assert not torch.allclose(model(peak), model(moved))


def test_the_registry_holds_each_models_facts():
    assert "ramannet_loop" in MODELS and "ramannet_loop" not in user_models()
    assert get_model_spec("seed_attention").transductive and get_model_spec("seed_attention").per_element
    assert not any(get_model_spec(name).transductive for name in user_models() if name != "seed_attention")
    assert get_model_spec("ramannet").defaults["triplet_weight"] == 0.5
    for name in user_models():
        spec = get_model_spec(name)
        assert spec.description and spec.element_loss in ("bce", "mse")
        if spec.width:  # the width parameter really is one of the builder's, and changes the network
            wide, narrow = build_model(name, 256, 3, **{spec.width: 48}), build_model(name, 256, 3, **{spec.width: 24})
            assert count_parameters(wide) > count_parameters(narrow)


def test_a_parameter_a_builder_lacks_is_a_model_error():
    with pytest.raises(ModelError, match="model 'mlp'.*unexpected keyword argument 'depth'"):
        build_model("mlp", 128, 2, depth=3)


def test_the_model_help_comes_from_the_registry():
    from click.testing import CliRunner

    from ramanid.cli import main

    text = CliRunner().invoke(main, ["cv", "--help"]).output
    assert all(name in text for name in user_models()) and "Ibtehaz" in text and "ramannet_loop" not in text


def test_unknown_model_and_too_short_spectra():
    with pytest.raises(ModelError, match="unknown model"):
        build_model("transformer9000", 1024, 2)
    with pytest.raises(ModelError, match="ramannet: spectra of .* shorter than one window"):
        ramannet(30, 2)


def test_other_counts_stated():
    # seed_attention for one element: 1024*64+64, three 64x64 projections with bias, 64+1
    assert count_parameters(build_model("seed_attention", 1024, 1)) == 65_600 + 3 * 4_160 + 65 == 78_145
    # window embedding 64*32+64; positions 63*64; 3 blocks of (attention 3*64*64+192 + 64*64+64, feed-forward
    # 64*128+128 + 128*64+64, two LayerNorms 256); final LayerNorm 128; whole-spectrum path 1024*64+64;
    # head (64 mean + 64 max + 64 whole)*6+6
    assert (
        count_parameters(build_model("attention_resnet", 1024, 6))
        == (2_112 + 4_032 + 3 * 33_472 + 128 + 65_600 + 192 * 6 + 6)
        == 173_446
    )
    assert (
        count_parameters(build_model("mlp", 1024, 67))
        == (1024 * 256 + 256 + 512) + (256 * 128 + 128 + 256) + 128 * 67 + 67
    )
