import pytest
import torch

from stn.networks import build_classifier, count_parameters
from stn.networks.models import CifarResNet


@pytest.mark.parametrize("kind", ["cnn", "resnet", "small_cnn", "mlp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_network_maps_a_batch_to_logits(kind, channels):
    net = build_classifier(kind, channels, 7, (48, 48))
    assert net(torch.rand(5, channels, 48, 48)).shape == (5, 7)


@pytest.mark.parametrize("kind", ["cnn", "resnet", "mlp"])
def test_standardised_input_makes_the_scale_of_a_reducers_output_irrelevant(kind):
    # A reducer whose output is 100× brighter and shifted (PCA coefficients, max pooling)
    # reaches the network as the same standardised batch.
    torch.manual_seed(0)
    net = build_classifier(kind, 1, 10, (48, 48)).train()
    x = torch.rand(8, 1, 48, 48)
    assert torch.allclose(net(x), net(100 * x - 3), atol=1e-4)


def test_without_standardisation_the_scale_matters():
    torch.manual_seed(0)
    net = build_classifier("mlp", 1, 10, (48, 48), standardise_input=False).train()
    x = torch.rand(8, 1, 48, 48)
    assert not torch.allclose(net(x), net(100 * x - 3), atol=1e-2)


def test_standardisation_at_evaluation_uses_training_statistics():
    net = build_classifier("cnn", 1, 10, (48, 48))
    standardiser = net.features[0]
    net.train()
    for _ in range(200):
        net(5 + 2 * torch.randn(16, 1, 48, 48))
    assert standardiser.running_mean.item() == pytest.approx(5, abs=0.05)
    assert standardiser.running_var.item() == pytest.approx(4, rel=0.05)


def test_resnet_depth_sets_blocks_per_stage():
    blocks = [
        sum(
            1 for m in CifarResNet(1, 10, depth=depth).modules() if type(m).__name__ == "BasicBlock"
        )
        for depth in (8, 20)
    ]
    assert blocks == [3, 9]
    assert count_parameters(CifarResNet(1, 10, depth=20)) > count_parameters(CifarResNet(1, 10))


@pytest.mark.parametrize("depth", [7, 10, 2])
def test_resnet_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match="6n \\+ 2"):
        CifarResNet(1, 10, depth=depth)


def test_too_small_an_input_names_the_size_needed():
    with pytest.raises(ValueError, match="h, w >= 16"):
        build_classifier("cnn", 1, 10, (12, 12))


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ValueError, match="cnn, mlp, resnet, small_cnn"):
        build_classifier("vgg", 1, 10, (48, 48))
