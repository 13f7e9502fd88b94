"""What linear estimators reach on a scan-line-subsampled echo bundle, for scale against the
diffusion reconstructions of bench/echo_seqdiff.sh (issue 8).

Estimators of every frame from its own measured lines and, causally, the earlier frames' ones:
  interp        linear interpolation across the missing lines (the bench's baseline)
  recent        each missing line from its most recent measurement
  blend<w>      w * recent + (1 - w) * interp
  lmmse-space   per-pixel linear least squares from the 4 nearest measured lines of the frame
                (3 depths each), fitted on TRAIN's sequences under the same rolling pattern
  lmmse-time    the same plus the most recent measurements of the line and its two neighbours
                (3 depths each): a causal spatio-temporal Wiener filter
  oracle-prev   missing lines from the *true* previous frame (not causal: for scale only)
The LMMSE rows need a rolling equispaced mask (every frame's lines R apart); pixels too close to
the edge for the 4-line stencil keep interp. PSNR as everywhere in cinediff (data range
max(truth frame)), mean over frames 2..T.

    python3 bench/scanline_linear_bounds.py BUNDLE_DIR TRAIN.npy [TRAIN_SEQUENCES=64]
"""
import sys

import numpy as np

bundle, train_path = sys.argv[1], sys.argv[2]
n_train = int(sys.argv[3]) if len(sys.argv) > 3 else 64
y = np.load(f"{bundle}/y.npy").astype(np.float64)
mask = np.load(f"{bundle}/mask.npy").astype(bool)
truth = np.load(f"{bundle}/truth.npy").astype(np.float64).reshape(y.shape)
T, D, L = y.shape


def psnr(x, ref):
    return 10 * np.log10(ref.max() ** 2 / np.mean((x - ref) ** 2))


def interp(frame, cols):
    return np.stack([np.interp(np.arange(L), cols, frame[d, cols]) for d in range(D)])


def rolling_period(m):
    """R if every frame measures every R-th line (any offset), else None."""
    gaps = {tuple(np.diff(np.nonzero(row)[0])) for row in m}
    steps = {g for gap in gaps for g in gap}
    return steps.pop() if len(steps) == 1 else None


def stencil(frame, recent, j, cols, R):
    """Features of missing column j: 4 measured lines around it and the recent buffer at j-1..j+1,
    each at depths d-1, d, d+1 (edge-padded); None when the stencil leaves the image."""
    c0 = cols[cols < j].max() if (cols < j).any() else None
    if c0 is None or c0 - R < 0 or c0 + 2 * R >= L or j + 1 >= L:
        return None
    pf = np.pad(frame, ((1, 1), (0, 0)), mode="edge")
    pr = np.pad(recent, ((1, 1), (0, 0)), mode="edge")
    space = [pf[s:s + D, c] for s in (0, 1, 2) for c in (c0 - R, c0, c0 + R, c0 + 2 * R)]
    time = [pr[s:s + D, c] for s in (0, 1, 2) for c in (j - 1, j, j + 1)]
    return j - c0, np.stack(space + [np.ones(D)], 1), np.stack(space + time + [np.ones(D)], 1)


def walk(seq, m, R, visit):
    """Runs the causal buffer over a sequence; calls visit(t, frame, recent, cols) from frame R on
    (once every line has a measurement) with recent = the buffer before frame t's lines."""
    recent = np.zeros((D, L))
    for t in range(len(seq)):
        cols = np.nonzero(m[t])[0]
        if t >= 1:
            visit(t, seq[t], recent.copy(), cols)
        recent[:, cols] = seq[t][:, cols]


R = rolling_period(mask)
fits = {}
if R:
    train = np.load(train_path).astype(np.float64)[:n_train]
    rows = {}
    roll = np.array([[(c - t) % R == 0 for c in range(L)] for t in range(train.shape[1])])

    def collect(t, frame, recent, cols):
        if t < R:
            return
        for j in sorted(set(range(L)) - set(cols)):
            f = stencil(frame, recent, j, cols, R)
            if f:
                rows.setdefault(f[0], []).append((f[1], f[2], frame[:, j]))

    for seq in train:
        walk(seq, roll, R, collect)
    for o, r in rows.items():
        target = np.concatenate([c for _, _, c in r])
        fits[o] = [np.linalg.lstsq(np.concatenate([x[k] for x in r]), target, rcond=None)[0]
                   for k in (0, 1)]

scores = {}


def evaluate(t, frame, recent, cols):
    ref = truth[t]
    est = {"interp": interp(frame, cols)}
    if t >= R if R else t >= 4:
        filled = frame.copy()
        missing = np.setdiff1d(np.arange(L), cols)
        filled[:, missing] = recent[:, missing]
        est["recent"] = filled
        for w in (0.5, 0.7):
            est[f"blend{w}"] = w * filled + (1 - w) * est["interp"]
        prev = truth[t - 1].copy()
        prev[:, cols] = frame[:, cols]
        est["oracle-prev"] = prev
        if fits:
            space, time = est["interp"].copy(), est["interp"].copy()
            for j in missing:
                f = stencil(frame, recent, j, cols, R)
                if f:
                    space[:, j] = f[1] @ fits[f[0]][0]
                    time[:, j] = f[2] @ fits[f[0]][1]
            est["lmmse-space"], est["lmmse-time"] = space, time
    for k, v in est.items():
        scores.setdefault(k, []).append(psnr(v, ref))


walk(y, mask, R, evaluate)
base = np.mean(scores["interp"][-len(scores["recent"]):])
print(f"frames {T - len(scores['recent']) + 1}..{T} (every line measured at least once before)")
for k, v in scores.items():
    v = v[-len(scores["recent"]):]
    print(f"{k:12s} {np.mean(v):6.2f} dB  ({np.mean(v) - base:+.2f} over interp)")
