"""EGMT network and losses: shapes, and the published equations on hand-computed cases
(attention rows, channel cross-attention, 60 % masking, focal loss, task weights, fusion terms, metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.egmt.attention import ChannelCrossAttention, attention, attention_weights, from_windows, to_windows
from engine.egmt.classification import multilabel_metrics
from engine.egmt.config import EGMTConfig
from engine.egmt.entity_table import EntityTable, dedupe, normalise_name
from engine.egmt.losses import (
    EGMTLoss, TaskWeights, class_balance_weights, edge_loss, focal_loss, intensity_loss, laplacian, ssim,
)
from engine.egmt.model import EGMT, mask_entities
from engine.errors import FusionError

SMALL = dict(channels=8, patch_size=8, token_dim=32, channel_heads=2, token_heads=2, cgha_heads=2,
             entity_dim=12, num_classes=3, recon_channels=(8, 4))


def small_model(**overrides) -> EGMT:
    torch.manual_seed(0)
    return EGMT(EGMTConfig(**{**SMALL, **overrides}))


# ----- attention ---------------------------------------------------------------------------------

def test_attention_rows_hand_computed():
    q = torch.tensor([[[1.0, 0.0]]])                     # (1, Lq=1, d=2)
    k = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])         # (1, Lk=2, d=2)
    v = torch.tensor([[[10.0, 0.0], [0.0, 10.0]]])
    w = attention_weights(q, k)
    s = 1 / math.sqrt(2)                                 # q.k / sqrt(d_k)
    expected = [math.exp(s) / (math.exp(s) + 1), 1 / (math.exp(s) + 1)]   # 0.6698, 0.3302
    assert w[0, 0].tolist() == pytest.approx(expected, abs=1e-6)
    assert float(w.sum()) == pytest.approx(1.0)
    assert attention(q, k, v)[0, 0].tolist() == pytest.approx([10 * expected[0], 10 * expected[1]], abs=1e-5)


def test_attention_mask_excludes_padding():
    q, k = torch.randn(1, 3, 4), torch.randn(1, 2, 4)
    w = attention_weights(q, k, torch.tensor([[[True, False]]]))
    assert torch.allclose(w[..., 0], torch.ones(1, 3)) and torch.all(w[..., 1] == 0)


def test_channel_cross_attention_hand_computed():
    """Identity projections, 2 channels, 1 head, 1x1 windows: channel i of IR attends over the VIS channels
    with scores a_i * b_j (d_k = 1): a = (1, 2), b = (0, 1) -> (1 + 0.7311, 2 + 0.8808)."""
    mca = ChannelCrossAttention(channels=2, heads=1, window=1)
    with torch.no_grad():
        for conv in (mca.q, mca.out):
            conv.weight.copy_(torch.eye(2)[:, :, None, None])
            conv.bias.zero_()
        mca.kv.weight.copy_(torch.cat([torch.eye(2), torch.eye(2)])[:, :, None, None])
        mca.kv.bias.zero_()
    a = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    b = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    out = mca(a, b).flatten().tolist()
    assert out == pytest.approx([1 + 1 / (1 + math.exp(-1)), 2 + 1 / (1 + math.exp(-2))], abs=1e-5)


def test_windows_round_trip():
    x = torch.randn(2, 3, 16, 24)
    w = to_windows(x, 8)
    assert w.shape == (2, 6, 3, 64)
    assert torch.equal(from_windows(w, 16, 24, 8), x)
    assert torch.equal(w[0, 1, :, 0], x[0, :, 0, 8])     # second window starts at column 8


# ----- network -----------------------------------------------------------------------------------

def test_forward_shapes_and_range():
    model = small_model()
    out = model(torch.rand(2, 1, 16, 24), torch.rand(2, 1, 16, 24), torch.randn(2, 3, 12),
                torch.tensor([[True, True, False], [True, False, False]]))
    assert out.fused.shape == (2, 1, 16, 24) and out.logits.shape == (2, 3)
    assert float(out.fused.detach().min()) >= 0 and float(out.fused.detach().max()) <= 1


def test_no_entities_and_ablations():
    ir, vi = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    assert small_model()(ir, vi).fused.shape == (1, 1, 16, 16)             # no entity at all: null entity
    assert small_model(use_multitask=False)(ir, vi).logits is None          # w/o MT
    no_cgha = small_model(use_cgha=False)
    assert not any("cgha" in n or "entity_fc" in n for n, _ in no_cgha.named_parameters())
    assert small_model(use_channel_attention=False, use_token_attention=False)(ir, vi).fused.shape == (1, 1, 16, 16)


def test_entities_change_the_fusion():
    model = small_model()
    with torch.no_grad():  # unembed starts at zero (identity token path); give it weights so CGHA shows
        for branch in (model.branch_ir, model.branch_vi):
            torch.nn.init.normal_(branch.patches.unembed.weight, std=0.1)
    model.eval()
    ir, vi = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    a = model(ir, vi, torch.randn(1, 2, 12)).fused
    b = model(ir, vi, torch.randn(1, 2, 12)).fused
    assert not torch.allclose(a, b)


def test_paper_configuration_size():
    """The paper's configuration (32 channels, 16 px patches, 768-d tokens) is about the published 53.6 M."""
    n = EGMT(EGMTConfig(entity_dim=512)).count_parameters()
    assert 40e6 < n < 60e6


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(FusionError, match="unknown EGMT model option"):
        EGMTConfig.from_dict({"chanels": 3})
    with pytest.raises(FusionError, match="divisible"):
        EGMTConfig.from_dict({"channels": 10, "channel_heads": 4})


# ----- masking (Eq. 8) ---------------------------------------------------------------------------

def test_masking_zeroes_exactly_sixty_percent():
    x = torch.ones(4, 5, 10)
    masked = mask_entities(x, 0.6)
    assert (masked == 0).sum(dim=(1, 2)).tolist() == [30, 30, 30, 30]
    assert not torch.equal(masked[0], masked[1])                             # a fresh draw per sample


def test_masking_only_in_training():
    model = small_model()
    ir, vi, ent = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), torch.randn(1, 2, 12)
    model.eval()
    assert torch.equal(model(ir, vi, ent).logits, model(ir, vi, ent).logits)
    model.train()
    torch.manual_seed(1)
    first = model(ir, vi, ent).logits
    assert not torch.equal(first, model(ir, vi, ent).logits)


# ----- losses ------------------------------------------------------------------------------------

def test_focal_loss_hand_computed():
    ones = torch.ones(1)
    # p = 0.5, y = 1: (1 - 0.5)^2 * ln 2
    assert float(focal_loss(torch.zeros(1, 1), torch.ones(1, 1), ones, ones, 2.0)) == pytest.approx(0.25 * math.log(2))
    # p = 0.75, y = 0: p_t = 0.25, (0.75)^2 * -ln(0.25), times alpha_neg = 0.625
    value = focal_loss(torch.tensor([[math.log(3)]]), torch.zeros(1, 1), ones, torch.tensor([0.625]), 2.0)
    assert float(value) == pytest.approx(0.625 * 0.5625 * math.log(4), rel=1e-5)
    # gamma = 0 is the weighted BCE
    assert float(focal_loss(torch.zeros(1, 1), torch.ones(1, 1), ones, ones, 0.0)) == pytest.approx(math.log(2))


def test_class_balance_weights():
    pos, neg = class_balance_weights(torch.tensor([0.2, 0.5, 0.0]), cap=50.0)
    assert pos.tolist() == pytest.approx([2.5, 1.0, 50.0])
    assert neg.tolist() == pytest.approx([0.625, 1.0, 0.5], rel=1e-5)


def test_task_weights_eq10():
    tw = TaskWeights(tau=1.0)
    assert tw().tolist() == pytest.approx([0.5, 0.5])
    with torch.no_grad():
        tw.w.copy_(torch.tensor([1.0, 0.0]))
    assert tw().tolist() == pytest.approx([math.exp(-1) / (math.exp(-1) + 1), 1 / (math.exp(-1) + 1)])
    tw.tau = 2.0
    assert tw().tolist() == pytest.approx([math.exp(-0.5) / (math.exp(-0.5) + 1), 1 / (math.exp(-0.5) + 1)])


def test_fusion_terms_hand_computed():
    ir = torch.zeros(1, 1, 4, 4)
    ir[..., :, 2:] = 1.0                                  # right half hot
    vi = torch.full((1, 1, 4, 4), 0.25)
    fused = torch.full((1, 1, 4, 4), 0.5)
    # max(ir, vi) is 0.25 on the left, 1 on the right: |0.5 - 0.25| and |0.5 - 1| -> mean 0.375
    assert float(intensity_loss(fused, ir, vi)) == pytest.approx(0.375)
    # constant fused: |lap f| = 0; target |lap ir| is 1 in columns 1 and 2 (reflected borders), 0 elsewhere
    assert laplacian(ir)[0, 0, 0].tolist() == pytest.approx([0, 1, -1, 0])
    assert float(edge_loss(fused, ir, vi)) == pytest.approx(0.5)
    big = torch.rand(1, 1, 16, 16)
    assert float(ssim(big, big)[0]) == pytest.approx(1.0, abs=1e-6)


def test_total_loss_uses_task_weights():
    loss = EGMTLoss(positive_ratio=torch.tensor([0.5, 0.5]))
    ir, vi, fused = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    terms = loss(fused, ir, vi, torch.zeros(2, 2), torch.ones(2, 2))
    expected = 0.5 * terms.terms["L_fus"] + 0.5 * terms.terms["L_cla"]
    assert float(terms.total) == pytest.approx(float(expected))
    assert float(terms.terms["L_fus"]) == pytest.approx(float(terms.terms["L_int"] + 15 * terms.terms["L_edge"]
                                                              + 5 * terms.terms["L_ssim"]), rel=1e-6)


# ----- entities and classification metrics ---------------------------------------------------------

def test_entity_names_case_insensitive():
    assert normalise_name("car_(automobile)") == "car" and normalise_name("Traffic  Light") == "traffic light"
    assert dedupe(["Person", "car", "person", "CAR", "dog"]) == ["Person", "car", "dog"]
    table = EntityTable(["person", "car"], np.array([[3.0, 4.0], [0.0, 2.0]]))
    feats, names = table.lookup(["PERSON", "bus", "person"])
    assert names == ["PERSON"] and feats[0].tolist() == pytest.approx([0.6, 0.8])   # unit rows
    assert table.missing(["bus"]) == ["bus"]


def test_multilabel_metrics_hand_computed():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.2], [0.4, 0.6], [0.3, 0.8], [0.1, 0.7]])
    m = multilabel_metrics(y, p)
    assert m["HL"] == pytest.approx(2 / 8)                # (row 3 class 0 missed, row 4 class 1 false)
    # class 0: positives at ranks 1 and 3 of [0.9, 0.4, 0.3, 0.1] -> AP (1 + 2/3)/2; AUC 3/4
    # class 1: order [0.8, 0.7, 0.6, 0.2] with labels [1, 0, 1, 0] -> AP (1 + 2/3)/2; AUC 3/4
    assert m["mAP"] == pytest.approx(round((1 + 2 / 3) / 2, 4))
    assert m["AUC"] == pytest.approx(0.75)
