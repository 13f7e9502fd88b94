# Pure-python stats of an APS run: mean per-pixel std, RMS error of the mean (complex, user units),
# Pearson r between |error| and std per pixel. usage: aps_stats.py RUN_DIR TRUTH.npy
import struct, ast, array, math, sys
def load(p):
    b = open(p, 'rb').read()
    hl = struct.unpack('<H', b[8:10])[0]
    h = ast.literal_eval(b[10:10 + hl].decode())
    a = array.array('f'); a.frombytes(b[10 + hl:])
    return h['descr'], a
d = sys.argv[1]
_, r = load(d + '/recon.npy'); _, s = load(d + '/std.npy'); _, t = load(sys.argv[2])
n = len(s)
err = [math.hypot(r[2*i] - t[2*i], r[2*i+1] - t[2*i+1]) for i in range(n)]
ms = sum(s) / n; me = sum(err) / n
rms = math.sqrt(sum(e*e for e in err) / n)
cov = sum((a - me) * (b - ms) for a, b in zip(err, s)) / n
sa = math.sqrt(sum((a - me)**2 for a in err) / n); sb = math.sqrt(sum((b - ms)**2 for b in s) / n)
print(f"mean std {ms:.4f}  rms error {rms:.4f}  r(|err|, std) {cov/(sa*sb):.3f}")
