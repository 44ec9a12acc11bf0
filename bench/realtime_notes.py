"""The "what we tried" section of docs/benchmarks.md: each approach to real-time M2PN on the CPU, with the
figure measured for it (kept here, beside the code, so that regenerating the page keeps it).

Two rounds of measurements: the first (speed rows and the first quality rows) on the shared 2-core VM while
the M2PN CPU training ran beside it, with an intermediate checkpoint; the second (the rows marked "final
weights") with the committed ``engine/weights/m2pn.pt`` on all 25 TNO pairs and, as a held-out check at the
cameras' resolution, the 20 MSRS test pairs (640x480). Reproduce the quality figures with
``python -m bench.realtime_quality [--data ...]`` and the speed figures with ``python -m bench``.
"""

TRIED_MD = """\
Target: at least 25 fused frames per second end to end at 640x480 on the 2-core CPU, with Qabf, VIF and
SSIM on the 25 TNO pairs within 3 % of the full-resolution network. The network stays M2PN (its prompts and
memory bank, trained weights untouched); only where and how it runs changes. Timings: shared, loaded
machine (the M2PN training was running), one intra-op thread unless said otherwise.

| approach | measured | kept? |
|---|---|---|
| Full-resolution M2PN, eager PyTorch | 2.1 s per 640x480 frame (0.5 FPS end to end); 410 ms at 320x240 | reference only |
| ONNX Runtime instead of eager PyTorch (export with dynamic H/W, same float32 graph) | max \\|ORT − torch\\| 6e-7; 160x120: 70 vs 132 ms, 128x96: 47 vs 73 ms, 80x60: 18 vs 34 ms (1.5–1.9x faster) | yes: default CPU runtime (`cpu_runtime=auto`) |
| Network at reduced resolution + two-guide guided upsampling (fit fused ≈ a·IR + b·VIS + c at low resolution, upsample a, b, c bilinearly, apply to the full-resolution sources) | 640x480 with the network at 160x120: 39 ms per frame (network 31.5 ms, guided step 4.9 ms); at 120x90: 22 ms (network 18 ms, guided 0.9 ms) | yes: the `m2pn_rt` method |
| Guided-filter regulariser eps (6 TNO pairs, scale 0.25, r = 2) | eps = 1e-2: ΔQabf −69 %, ΔVIF −42 %; 1e-3: ΔQabf −39 %; 1e-4: ΔQabf −4.4 %, ΔVIF +7.2 %; 1e-5 / 1e-6: ΔQabf +4 %, ΔVIF +8.5 % | eps = 1e-4 (TNO's low contrast needs a small eps) |
| Window radius (same setting, eps 1e-4) | r = 1: ΔQabf −11 %; r = 2: −4.4 %; r = 4: −1.7 % | r = 4 |
| Add back the low-resolution residual of the linear fit (upsampled), so the coarse content is exactly the network's | VIF gap 10.5 % → 6.1 % on 6 pairs (r = 4, eps 1e-4), Qabf −0.2 % → +0.2 % | yes (`residual=True`) |
| Larger working resolution (scale 0.5 instead of 0.25, no cap) | not closer: ΔQabf −7 to −9 % vs −2 to −4 % at 0.25 on 6 pairs, at 4x the network cost | no |
| Fixed scale 0.25 at every camera size | 1280x720 runs the network at 320x180: 225 ms per frame (4.8 FPS) | replaced by a pixel budget (`max_work_pixels`, 120x90 by default) |
| Two intra-op threads instead of one | loaded machine (training beside it): slower, 63.8 vs 39.2 ms per 640x480 frame; idle machine, through the pipeline: 36.8 vs 28.4 FPS at 640x480 | 2 threads by default (`threads=2`); `threads=1` when the machine has other work |
| Colour split and merge on uint8 instead of float32 (`FusionEngine`, every method) | 640x480: 1.5 ms instead of 10.3 ms per frame; `noop` 65 → 210 FPS, `m2pn_rt` 23.7 → 28.4 FPS (1 thread); at most 2 levels per channel from the float path | yes |
| Padding to multiples of 32 for compiled engines | changes M2PN's output (its prompts pool over the whole image, padding included), so only the TensorRT path pads; the CPU path never does | TensorRT only |
| Final weights, defaults (120x90 budget, r = 4, eps = 1e-4, residual on) | TNO (25): ΔQabf −0.02 %, ΔVIF +4.3 %, ΔSSIM −0.7 %; MSRS test (20, 640x480): ΔQabf +0.1 %, ΔVIF −1.9 %, ΔSSIM −0.3 % | yes (the defaults) |
| Final weights, no residual | TNO: ΔQabf +3.2 %, ΔVIF +9.7 % (a cleaner linear mix than the network itself) | no |
| Final weights, residual at half weight; second two-guide fit of the residual (r = 2); residual carried by a one-guide guided filter | TNO: ΔQabf +2.2 / +4.7 / +4.9 %, ΔVIF +7.8 / +9.6 / +10.0 % | no: further from the network than the plain residual |
| Final weights, tuned on TNO to bring VIF inside 3 % (eps 2e-4; 160x120 budget with r = 2; 160x120 with eps 1.5e-4) | TNO: (−2.6, +3.1), (−2.8, +2.5), (−1.8, +2.9) % for (ΔQabf, ΔVIF), but on held-out MSRS (−2.4, −4.5), (−3.2, −4.8), (−1.9, −4.0) % | no: it fits TNO and loses VIF elsewhere; the defaults are kept |
| Oracle: the local linear model fitted at full resolution on the full network's own output (r = 1) | TNO: ΔQabf −0.8 %, ΔVIF +0.3 %, ΔSSIM +0.3 % | bound only (needs the full-resolution network) |
| **Halos (this round)**: where they come from, measured with `engine.metrics.halo` on the lakeside frame / MSRS night 00024N / 00040N (grey levels; full network 1.62 / 1.63 / 1.63) | `m2pn_rt` as it was (r = 4, residual on): 5.42 / 5.04 / 6.39; the 120x90 network output upsampled alone: 5.91 / 5.24 / 6.78; the same fit without the residual: 2.28 / 0.82 / 1.10; the fit on the full network's own output (oracle, r = 1): 1.48 / 1.43 / 1.39 | the halos are the low-resolution network's own edge bands, carried to full resolution by the residual add-back; the two-guide fit is not their source |
| Window coefficients weighted by their fit error (robust guided filter) | halo unchanged (5.44 / 5.00 / 6.38 with the residual; 2.82 lakeside without) | no |
| Residual kept but damped near edges (gate 1/(1+(g/g0)^2), g0 = 0.02-0.1), blurred (σ 1.5), or halved | halo 2.7-3.7 on the lakeside frame, and ΔQabf / ΔVIF on TNO +2.1..+3.0 / +7.8..+9.6 %: the part of the residual that keeps the metrics at the network's is exactly the part that makes the halo | no |
| No residual, radius 2 / 4 / 6 / 8 (low-resolution pixels) | lakeside halo 3.42 / 2.28 / 1.77 / 1.55; TNO (ΔQabf, ΔVIF, ΔSSIM) at r = 8: +4.3, +10.3, +0.35 %; MSRS test: +12.8, +16.9, +1.75 % | r = 8, no residual |
| No residual, r = 8, eps 2e-4 / 3e-4 / 5e-4 (r = 6, eps 3e-4) | lakeside halo 1.43 / 1.34 / 1.20 (1.53); TNO ΔQabf +2.7 / +1.2 / −1.7 % (+0.1), ΔVIF +9.5 / +8.8 / +7.6 % (+8.3); MSRS ΔQabf +10.3 / +8.6 / +6.2 %, ΔVIF +13.6 / +11.5 / +8.6 % | **r = 8, eps 3e-4, no residual** (new defaults): halo below the full network's everywhere, every metric at or above the full network's; VIF stays 8-12 % above it whatever the setting (a local mix of the sources keeps more of them than the network does), so ±3 % is out of reach without the residual's halos |
| eps 1e-3 without the residual | halo 1.51 but TNO ΔQabf −13.9 % | no |
| Black level on dark night scenes | mean grey 78 where the sources are 16 and 28 (MSRS night): the full network lifts the blacks by +50.6 grey levels, `m2pn_rt` by +50.1 | left to the retrained network (`engine/m2pn` is not changed here) |
| **Speed (this round)**: a, b, c upsampled as one 3-channel image; residual folded into c | 1280x720: 9.9 → 3.4 ms of one core for the full-resolution apply | yes |
| Area reduction in two steps (integer factor first) | 1280x720: 1.1 → 0.25 ms per image, 1920x1080: 2.4 → 0.6 ms; about 2 grey levels from the one-step result | yes |
| Streaming (video mode): frame t's network on a worker thread while frame t is finished with frame t−1's coefficients | the network's time overlaps the rest of the pipeline; mix proportions one frame old (lag measured in the flicker table) | yes, with the video mode (`m2pn_rt+video` rows) |
| TensorRT: pad to multiples of 32 vs engines for the exact size | padding changed the output by up to 0.167 at 120x90 (global pooling over the padding); exact-size engines are keyed by shape in the cache anyway | exact size (`multiple = 1`) |
| Distilled narrower student | not tried this session: the only CPU was busy with the teacher's training | — |
| Int8 quantisation, OpenVINO | not tried: ONNX Runtime's dynamic quantisation covers MatMul/Gemm, while M2PN's time is in 3x3 convolutions; static int8 would need calibration data and a numerics study we had no time for | — |
"""
