"""M2PN building blocks against the paper's equations: shapes, Eq. 1 attention, DMB retrieval (Eq. 2),
threshold (Eq. 4), memory update (Eq. 5), kappa's gradient, AdaIN/PGM (Eq. 6) and the ablation switches."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from engine.m2pn import M2PN, M2PNConfig, M2PNOutput
from engine.m2pn.csgn import CSGN, AdditiveGraphAttention
from engine.m2pn.dmb import DynamicMemoryBank
from engine.m2pn.encoders import DenseEncoder, ResidualEncoder
from engine.m2pn.pgm import AdaIN, MemoryGuidedFusion, PromptGuidanceModule

TINY = M2PNConfig(
    stem_channels=4, dense_growth=4, dense_layers=2, residual_channels=4, decoder_channels=(8, 8, 4),
    prompt_dim=16, graph_heads=2, mgf_heads=2, memory_slots=8,
)
D = TINY.prompt_dim


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def pair(b=2, h=37, w=53):
    return torch.rand(b, 1, h, w), torch.rand(b, 1, h, w)


# ---- shapes -------------------------------------------------------------------------------------
def test_encoder_shapes():
    enc = DenseEncoder(stem=4, growth=4, layers=2)
    assert enc.out_channels == 12
    assert enc(torch.rand(3, 1, 37, 53)).shape == (3, 12, 37, 53)
    res = ResidualEncoder(channels=5, hidden=3)
    assert res(torch.rand(2, 1, 37, 53) * 2 - 1).shape == (2, 5, 37, 53)


def test_csgn_shapes_with_and_without_graph():
    phi = torch.rand(2, 12, 9, 11)
    phi_m = torch.rand(2, 4, 9, 11)
    for use_graph in (True, False):
        g_ir, g_vi = CSGN(12, 4, D, heads=2, use_graph=use_graph)(phi, phi.flip(0), phi * 0.5, phi_m)
        assert g_ir.shape == (2, D) and g_vi.shape == (2, D)


def test_dmb_shapes():
    dmb = DynamicMemoryBank(12, D, slots=8).eval()
    theta_f, theta_q, sim = dmb(torch.rand(3, 12, 7, 9))
    assert theta_f.shape == (3, D) and theta_q.shape == (3, D) and sim.shape == (3, 8)
    assert sim.abs().max() <= 1.0 + 1e-5  # cosine similarities


def test_mgf_adain_pgm_shapes():
    theta_q, g_ir, g_vi = torch.randn(2, D), torch.randn(2, D), torch.randn(2, D)
    theta_p, alpha = MemoryGuidedFusion(D, heads=2)(theta_q, g_ir, g_vi)
    assert theta_p.shape == (2, D) and alpha.shape == (2, 2)
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(2))  # Eq. 8 softmax over {IR, VIS}
    x = torch.rand(2, 6, 13, 17)
    assert AdaIN(6, D)(x, theta_p).shape == x.shape
    out, pgm_alpha = PromptGuidanceModule(6, 5, D, heads=2)(x, theta_q, g_ir, g_vi)
    assert out.shape == (2, 5, 13, 17) and pgm_alpha.shape == (2, 2)


def test_m2pn_odd_size_output():
    model = M2PN(TINY).eval()
    ir, vi = pair(2, 37, 53)
    out = model(ir, vi)
    assert isinstance(out, M2PNOutput)
    assert out.fused.shape == (2, 1, 37, 53)
    assert out.fused.min() >= 0 and out.fused.max() <= 1  # (tanh + 1) / 2
    c = TINY.encoder_channels
    assert out.phi_ir.shape == out.phi_vi.shape == (2, c, 37, 53)
    for t in (out.f_ir, out.f_vi, out.g_ir, out.g_vi, out.theta_f, out.theta_q):
        assert t.shape == (2, D)
    assert out.similarity.shape == (2, TINY.memory_slots)
    assert len(out.alphas) == 3 and all(a.shape == (2, 2) for a in out.alphas)
    assert out.memory_update is None  # eval mode


# ---- Eq. 1 ----------------------------------------------------------------------------------------
def test_additive_attention_rows_are_distributions_and_depend_on_the_query():
    attn = AdditiveGraphAttention(D, heads=2)
    nodes = torch.randn(4, 3, D)
    updated, attention = attn(nodes)
    assert updated.shape == nodes.shape and attention.shape == (4, 2, 3, 3)
    torch.testing.assert_close(attention.sum(dim=-1), torch.ones(4, 2, 3))
    assert (attention >= 0).all()
    # the LeakyReLU keeps the query term: different nodes i get different weight rows
    assert not torch.allclose(attention[:, :, 0], attention[:, :, 1])


# ---- Eq. 2: retrieval ----------------------------------------------------------------------------
def test_retrieval_finds_the_slot_equal_to_theta_f():
    dmb = DynamicMemoryBank(12, D, slots=8, temperature=0.1, key_mode="raw").eval()
    phi_f = torch.rand(1, 12, 5, 5)
    with torch.no_grad():
        theta_f = dmb.project(phi_f)
        dmb.memory[5] = theta_f[0]
        got_f, theta_q, sim = dmb(phi_f)
    torch.testing.assert_close(got_f, theta_f)
    assert sim[0, 5].item() == pytest.approx(1.0, abs=1e-5)
    weights = (sim / 0.1).softmax(dim=1)
    assert int(weights.argmax()) == 5 and int(sim.argmax()) == 5
    torch.testing.assert_close(theta_q, weights @ dmb.memory)


# ---- Eq. 4: threshold ----------------------------------------------------------------------------
def test_threshold_is_mean_plus_kappa_std():
    dmb = DynamicMemoryBank(12, D, slots=8, kappa_init=0.7)
    dmb.quality_mean.fill_(0.4)
    dmb.quality_var.fill_(0.09)
    assert float(dmb.threshold().detach()) == pytest.approx(0.4 + 0.7 * 0.3, abs=1e-6)


def test_kappa_gets_a_gradient_from_the_gate_loss():
    dmb = DynamicMemoryBank(12, D, slots=8, kappa_init=0.5, target_accept_rate=0.25)
    dmb.quality_mean.fill_(0.5)
    dmb.quality_var.fill_(0.01)
    dmb.quality_count.fill_(10)
    loss = dmb.gate_loss(torch.tensor([0.3, 0.5, 0.6, 0.9]))
    loss.backward()
    assert dmb.kappa.grad is not None and dmb.kappa.grad.abs() > 0
    assert all(p.grad is None for n, p in dmb.named_parameters() if n != "kappa")


# ---- Eq. 5: update -------------------------------------------------------------------------------
def crafted_bank(momentum=0.25):
    """8 orthogonal-ish slots, history mean 0.5 / std 0.1, kappa 0.5 -> tau = 0.55; the paper's literal
    update (raw key: nearest slot, Eq. 5)."""
    dmb = DynamicMemoryBank(12, D, slots=8, momentum=momentum, kappa_init=0.5, key_mode="raw").train()
    with torch.no_grad():
        dmb.memory.copy_(torch.eye(8, D))
        dmb.quality_mean.fill_(0.5)
        dmb.quality_var.fill_(0.01)
        dmb.quality_count.fill_(100)
    return dmb


def test_update_moves_the_nearest_slot_by_beta():
    dmb = crafted_bank(momentum=0.25)
    theta = torch.zeros(2, D)
    theta[0, 3], theta[0, 10] = 2.0, 0.5     # nearest slot 3
    theta[1, 6] = 1.0                        # nearest slot 6, but low quality
    old = dmb.memory.clone()
    update = dmb.update(theta, torch.tensor([0.9, 0.2]))
    assert update.threshold == pytest.approx(0.55, abs=1e-6)
    assert update.accepted.tolist() == [True, False]
    assert update.slots.tolist() == [3, 6]
    expected = old[3] * (1 - 0.25) + 0.25 * theta[0]
    assert torch.equal(dmb.memory[3], expected)
    untouched = [i for i in range(8) if i != 3]
    assert torch.equal(dmb.memory[untouched], old[untouched])
    assert dmb.slot_updates.tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    assert int(dmb.quality_count) == 102  # the history statistics see both instances


def test_no_update_when_quality_is_not_above_tau():
    dmb = crafted_bank()
    old = dmb.memory.clone()
    tau = float(dmb.threshold().detach())
    update = dmb.update(torch.eye(2, D), torch.tensor([tau, 0.1]))  # Q == tau is not "Q > tau"
    assert not update.accepted.any()
    assert torch.equal(dmb.memory, old) and int(dmb.slot_updates.sum()) == 0


def test_no_update_in_eval_mode():
    dmb = crafted_bank().eval()
    old = {k: v.clone() for k, v in dmb.state_dict().items()}
    assert dmb.update(torch.eye(2, D), torch.tensor([0.99, 0.99])) is None
    for k, v in dmb.state_dict().items():
        assert torch.equal(v, old[k]), k


def test_slot_updates_count_repeated_writes():
    dmb = crafted_bank()
    theta = torch.zeros(3, D)
    theta[:, 2] = 1.0
    dmb.update(theta, torch.tensor([0.9, 0.95, 0.99]))
    assert int(dmb.slot_updates[2]) == 3 and int(dmb.slot_updates.sum()) == 3


def test_full_model_updates_memory_in_training_only():
    model = M2PN(TINY)
    model.set_quality_evaluator(lambda fused: torch.full((fused.shape[0],), 0.99))
    with torch.no_grad():
        model.dmb.quality_mean.fill_(0.5)
        model.dmb.quality_var.fill_(0.01)
        model.dmb.quality_count.fill_(10)
    ir, vi = pair(2, 16, 16)
    model.eval()
    before = model.dmb.memory.clone()
    with torch.no_grad():
        model(ir, vi)
    assert torch.equal(model.dmb.memory, before)
    model.train()
    out = model(ir, vi)
    assert out.memory_update is not None and out.memory_update.accepted.all()
    assert not torch.equal(model.dmb.memory, before)
    assert int(model.dmb.slot_updates.sum()) == 2


# ---- AdaIN (Eq. 6) -------------------------------------------------------------------------------
def test_adain_with_zero_affine_is_instance_norm_and_follows_the_prompt():
    adain = AdaIN(3, D)
    with torch.no_grad():
        adain.affine.weight.zero_()
        adain.affine.bias.zero_()
    x = torch.rand(2, 3, 10, 12) * 5 + 2
    y = adain(x, torch.randn(2, D))
    torch.testing.assert_close(y.mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(2, 3), unbiased=False), torch.ones(2, 3), atol=1e-3, rtol=0)
    with torch.no_grad():
        adain.affine.bias[3:].fill_(0.7)  # beta half -> shift every channel
    torch.testing.assert_close(adain(x, torch.randn(2, D)).mean(dim=(2, 3)), torch.full((2, 3), 0.7), atol=1e-5, rtol=0)


# ---- ablation switches ---------------------------------------------------------------------------
def param_names(cfg: M2PNConfig) -> set[str]:
    return {n for n, _ in M2PN(cfg).named_parameters()}


def ablated_output(full: M2PN, cfg: M2PNConfig, ir, vi) -> torch.Tensor:
    """Run the ablated model with the full model's weights where names match."""
    model = M2PN(cfg)
    model.load_state_dict(full.state_dict(), strict=False)
    with torch.no_grad():
        return model.eval()(ir, vi).fused


def test_ablation_switches_change_the_model():
    full = M2PN(TINY).eval()
    ir, vi = pair(1, 20, 24)
    with torch.no_grad():  # two stored experiences, so retrieval differs from the instance's own key
        full.dmb.memory[:2] = torch.randn(2, TINY.prompt_dim)
        full.dmb.slot_written[:2] = True
        reference = full(ir, vi)
    names = param_names(TINY)

    no_prompts = M2PN(replace(TINY, use_prompts=False))
    assert not hasattr(no_prompts, "csgn") and not hasattr(no_prompts, "dmb")
    assert not any(n.startswith(("csgn", "dmb", "residual_encoder")) or ".mgf." in n or ".adain." in n
                   for n, _ in no_prompts.named_parameters())
    assert no_prompts.count_parameters() < full.count_parameters()
    out = no_prompts.eval()(ir, vi)
    assert out.g_ir is None and out.theta_q is None and out.alphas is None

    no_csgn = replace(TINY, use_csgn=False)
    assert names - param_names(no_csgn) >= {"csgn.attn_ir.w_attn", "csgn.proj_f.mlp.0.weight"}
    assert not any(n.startswith("residual_encoder") for n in param_names(no_csgn))
    assert not torch.allclose(ablated_output(full, no_csgn, ir, vi), reference.fused)

    no_residual = replace(TINY, use_residual=False)
    assert not any(n.startswith(("residual_encoder", "csgn.proj_m")) for n in param_names(no_residual))
    assert "csgn.attn_ir.w_attn" in param_names(no_residual)   # the graph stays, with two nodes
    assert not torch.allclose(ablated_output(full, no_residual, ir, vi), reference.fused)

    no_dmb = replace(TINY, use_dmb=False)
    with torch.no_grad():
        out = M2PN(no_dmb).eval()(ir, vi)
    torch.testing.assert_close(out.theta_q, out.theta_f)
    assert not torch.allclose(ablated_output(full, no_dmb, ir, vi), reference.fused)


def test_use_quality_switch_controls_memory_writes():
    ir, vi = pair(2, 12, 12)
    with_quality = M2PN(TINY).train()  # no evaluator attached: the memory must stay as it is
    before = with_quality.dmb.memory.clone()
    assert with_quality(ir, vi).memory_update is None
    assert torch.equal(with_quality.dmb.memory, before)

    without_quality = M2PN(replace(TINY, use_quality=False)).train()  # Case 3: every instance written
    before = without_quality.dmb.memory.clone()
    update = without_quality(ir, vi).memory_update
    assert update is not None and update.accepted.all()
    assert not torch.equal(without_quality.dmb.memory, before)
    assert float(without_quality.dmb.gate_loss(torch.rand(2)).detach()) == 0.0


# ---- standardized key: a memory of many distinct experiences --------------------------------------
def _clustered_features(clusters=4, per_cluster=6, dim=D, offset=50.0, spread=0.5):
    """Instances in `clusters` groups that differ by ~1 per dimension on top of a large shared offset, as
    the projected Theta_f of real data does (its batch mean is ~99.9 % of its norm)."""
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(clusters, dim, generator=g)
    x = centres.repeat_interleave(per_cluster, 0) + spread * torch.randn(clusters * per_cluster, dim, generator=g)
    return x + offset, torch.arange(clusters).repeat_interleave(per_cluster)


def test_raw_key_collapses_onto_one_slot_on_a_large_shared_offset():
    # the failure of the first weights, reproduced: with the raw key every write lands on the same slot
    dmb = DynamicMemoryBank(12, D, slots=8, key_mode="raw", use_quality=False).train()
    feats, _ = _clustered_features()
    dmb.update(dmb.key(feats), None)
    assert int((dmb.slot_updates > 0).sum()) == 1


def test_standardized_key_spreads_writes_and_clusters_retrieve_different_slots():
    dmb = DynamicMemoryBank(12, D, slots=8, key_mode="standardized", use_quality=False, temperature=0.1).train()
    feats, labels = _clustered_features()
    order = torch.randperm(len(feats), generator=torch.Generator().manual_seed(2))
    for chunk in feats[order].split(4):
        dmb.update(dmb.key(chunk), None)
    assert int((dmb.slot_updates > 0).sum()) > 1
    assert bool(dmb.slot_written.all())   # empty slots are filled first
    dmb.eval()
    keys = dmb.key(feats)
    sim = torch.nn.functional.normalize(keys, dim=1) @ torch.nn.functional.normalize(dmb.memory, dim=1).T
    best = sim.argmax(dim=1)
    # the majority slot of each cluster differs from every other cluster's
    majority = [int(best[labels == c].mode().values) for c in range(4)]
    assert len(set(majority)) == 4


def test_unwritten_slots_take_no_part_in_retrieval():
    dmb = DynamicMemoryBank(12, D, slots=8, key_mode="standardized").eval()
    phi_f = torch.rand(3, 12, 5, 5)
    with torch.no_grad():
        theta_f, theta_q, _ = dmb(phi_f)
        torch.testing.assert_close(theta_q, theta_f)   # an empty bank: the instance is its own experience
        dmb.memory[2] = torch.randn(D)
        dmb.memory[6] = torch.randn(D)
        dmb.slot_written[[2, 6]] = True
        _, theta_q, _ = dmb(phi_f)
    weights = dmb.last_weights
    assert torch.all(weights[:, [0, 1, 3, 4, 5, 7]] == 0)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(theta_q, weights @ dmb.memory)


def test_full_bank_merges_similar_and_replaces_least_used():
    dmb = DynamicMemoryBank(12, D, slots=2, key_mode="standardized", use_quality=False, momentum=0.5,
                            merge_threshold=0.6).train()
    a, b, c = torch.eye(3, D) * 3
    with torch.no_grad():
        dmb.key_count.fill_(1)  # statistics already set: identity standardisation
    dmb.update(torch.stack([a, b]), None)            # fills both empty slots
    assert dmb.slot_written.all() and torch.equal(dmb.memory[0], a)
    dmb.slot_usage.copy_(torch.tensor([0.9, 0.1]))
    dmb.update((a + 0.1 * b)[None], None)            # similar to slot 0: Eq. 5 moves it halfway
    torch.testing.assert_close(dmb.memory[0], 0.5 * a + 0.5 * (a + 0.1 * b))
    dmb.update(c[None], None)                        # like nothing stored: replaces the least used (slot 1)
    torch.testing.assert_close(dmb.memory[1], c)
    assert dmb.slot_updates.tolist() == [2, 2]
