// descentlab.engine.vcnn: the MNIST-1D CNN's training loss and gradients for K runs.
//
// One run's step: input (B, L0) -> three Conv1d + ReLU -> flatten -> Linear -> cross-entropy
// (mean over the batch, optional label smoothing), then the backward pass. Every layer is
// computed as a convolution over activations laid out [channel][position][example], the
// examples innermost and padded to a whole number of vectors (64 bytes with AVX-512, 32 with
// AVX, 16 otherwise: DL_VBYTES), so that every inner
// loop is a run of vector multiply-adds over examples; the linear read-out is a convolution
// of kernel 1 over C*L3 channels of length 1 (torch's flatten order: c * L3 + l). Runs are
// independent: OpenMP splits them over threads, each with its own workspace.
#pragma GCC optimize("fp-contract=fast")
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <type_traits>

#if defined(__AVX512F__)
#define DL_VBYTES 64
#elif defined(__AVX__)
#define DL_VBYTES 32
#else
#define DL_VBYTES 16
#endif
typedef float VF __attribute__((vector_size(DL_VBYTES)));
typedef double VD __attribute__((vector_size(DL_VBYTES)));

template <class T> struct Vec;
template <> struct Vec<float> { typedef VF V; enum { N = DL_VBYTES / 4 }; };
template <> struct Vec<double> { typedef VD V; enum { N = DL_VBYTES / 8 }; };

template <class V> static inline V ld(const void* p) { V v; memcpy(&v, p, sizeof v); return v; }
template <class V> static inline void st(void* p, V v) { memcpy(p, &v, sizeof v); }

// With AVX-512 a vector is one of 32 registers: blocks of 5 channels fit (25 channels: no
// remainder of single channels), and a loaded vector is kept in a register (in_reg): without
// it the compiler folds the load into every multiply-add that uses it, and the loads, not the
// multiply-adds, bound the loops (1.35x the step, AMD EPYC (Zen 4); docs/verdict.md). Only
// where each output is computed changes, never the order of its sums: the results are the
// same bits. Without AVX-512 a vector is split over registers and the loops stay as they were.
#if defined(__AVX512F__)
static const bool WIDE = true;
#else
static const bool WIDE = false;
#endif
// Without AVX-512 a vector is one register: 32 bytes with AVX, 16 with SSE (64-byte vectors
// split over two or four registers spilled to memory on every multiply-add: built for AVX2 the
// step was 2.3x slower than torch's own operations; docs/kernel-runtime.md), and blocks hold 2
// vectors of examples (4 x 4 accumulators would not fit the 16 registers). The examples'
// sums then run over 8 or 4 lanes instead of 16: the same model to rounding, other low bits.
static constexpr int VB = WIDE ? 4 : 2;  // vectors of examples per block
static constexpr int CB4 = 4;  // output (input) channels per block
template <int KS> static constexpr int bw_channels() { return WIDE ? 4 : 2; }

// The blocks a layer's loops go over, each given to f with its width as a compile-time
// constant (f(Int<width>(), first)): channels [0, C) 5 at a time where WIDE and C % 5 == 0,
// then CB4 at a time, then one at a time; vectors of examples [0, nv) VB at a time, then one.
template <int N> using Int = std::integral_constant<int, N>;
template <class F> static inline void channel_blocks(int C, F f) {
    int c = 0;
    if (WIDE && C % 5 == 0)
        for (; c + 5 <= C; c += 5) f(Int<5>(), c);
    for (; c + CB4 <= C; c += CB4) f(Int<CB4>(), c);
    for (; c < C; ++c) f(Int<1>(), c);
}
template <class F> static inline void example_blocks(int nv, F f) {
    int v = 0;
    for (; v + VB <= nv; v += VB) f(Int<VB>(), v);
    for (; v < nv; ++v) f(Int<1>(), v);
}

template <class V> static inline V in_reg(V v) {
#if defined(__AVX512F__)
    if (sizeof(V) == 64) asm("" : "+v"(v));
#endif
    return v;
}

template <class T> static inline T hsum(typename Vec<T>::V v) {
    T s = 0;
    for (int i = 0; i < Vec<T>::N; ++i) s += v[i];
    return s;
}

// out[co][l][:] = bias[co] + sum_{ci, j} W[co][ci][j] in[ci][s l + j - p][:]  (ReLU if relu)
// in: [Cin][Lin][nv vectors], out: [Cout][Lout][nv vectors], W: [Cout][Cin][KS].
template <class T, int KS, int CB, int BV>
static void fwd_block(const T* in, int Cin, int Lin, const T* W, const T* bias, int Cout,
                      int Lout, int s, int p, T* out, int nv, bool relu, int co, int v0) {
    typedef typename Vec<T>::V V;
    const int NL = Vec<T>::N;
    const int64_t row = (int64_t)nv * NL;
    for (int l = 0; l < Lout; ++l) {
        V acc[CB][BV];
        for (int c = 0; c < CB; ++c)
            for (int b = 0; b < BV; ++b) acc[c][b] = (V){} + bias[co + c];
        int jlo = 0, jhi = KS;
        while (jlo < KS && s * l + jlo - p < 0) ++jlo;
        while (jhi > jlo && s * l + jhi - 1 - p >= Lin) --jhi;
        for (int ci = 0; ci < Cin; ++ci) {
            const T* src = in + ((int64_t)ci * Lin + (s * l - p)) * row + (int64_t)v0 * NL;
            const T* w = W + ((int64_t)co * Cin + ci) * KS;
            for (int j = jlo; j < jhi; ++j) {
                V x[BV];
                for (int b = 0; b < BV; ++b) x[b] = in_reg(ld<V>(src + (int64_t)j * row + b * NL));
                for (int c = 0; c < CB; ++c) {
                    const T wc = w[(int64_t)c * Cin * KS + j];
                    for (int b = 0; b < BV; ++b) acc[c][b] += wc * x[b];
                }
            }
        }
        for (int c = 0; c < CB; ++c)
            for (int b = 0; b < BV; ++b) {
                V a = acc[c][b];
                // ReLU keeping NaN (as torch.relu does): a diverged run stays non-finite
                if (relu) a = a < 0 ? (V){} : a;
                st(out + ((int64_t)(co + c) * Lout + l) * row + (int64_t)(v0 + b) * NL, a);
            }
    }
}

// Every block of output channels over every block of vectors of examples.
template <class T, int KS>
static void conv_fwd(const T* in, int Cin, int Lin, const T* W, const T* bias, int Cout,
                     int Lout, int s, int p, T* out, int nv, bool relu) {
    channel_blocks(Cout, [&](auto cb, int co) {
        example_blocks(nv, [&](auto bv, int v) {
            fwd_block<T, KS, cb, bv>(in, Cin, Lin, W, bias, Cout, Lout, s, p, out, nv, relu, co, v);
        });
    });
}

// gW[co][ci][j] = sum_{l, b} g[co][l][b] in[ci][s l + j - p][b];  gb[co] = sum_{l, b} g[co][l][b]
template <class T, int KS, int CB>
static void bwd_w_block(const T* g, const T* in, int Cin, int Lin, int Lout, int s, int p,
                        int nv, T* gW, int co) {
    typedef typename Vec<T>::V V;
    const int NL = Vec<T>::N;
    const int64_t row = (int64_t)nv * NL;
    for (int ci = 0; ci < Cin; ++ci) {
        V acc[CB][KS] = {};
        for (int l = 0; l < Lout; ++l) {
            int jlo = 0, jhi = KS;
            while (jlo < KS && s * l + jlo - p < 0) ++jlo;
            while (jhi > jlo && s * l + jhi - 1 - p >= Lin) --jhi;
            const T* src = in + ((int64_t)ci * Lin + (s * l - p)) * row;
            for (int v = 0; v < nv; ++v) {
                V gv[CB];
                for (int c = 0; c < CB; ++c)
                    gv[c] = ld<V>(g + ((int64_t)(co + c) * Lout + l) * row + (int64_t)v * NL);
                // j known at compile time: acc stays in registers (a j from a variable range
                // would index it in memory)
#pragma GCC unroll 8
                for (int j = 0; j < KS; ++j) {
                    if (j < jlo || j >= jhi) continue;
                    const V x = in_reg(ld<V>(src + (int64_t)j * row + (int64_t)v * NL));
                    for (int c = 0; c < CB; ++c) acc[c][j] += gv[c] * x;
                }
            }
        }
        for (int c = 0; c < CB; ++c)
            for (int j = 0; j < KS; ++j) gW[((int64_t)(co + c) * Cin + ci) * KS + j] = hsum<T>(acc[c][j]);
    }
}

template <class T, int KS>
static void conv_bwd_w(const T* g, const T* in, int Cin, int Lin, int Cout, int Lout, int s,
                       int p, int nv, T* gW, T* gb) {
    typedef typename Vec<T>::V V;
    const int NL = Vec<T>::N;
    const int64_t row = (int64_t)nv * NL;
    int co = 0;
    if (WIDE && KS <= 3 && Cout % 5 == 0)
        for (; co + 5 <= Cout; co += 5) bwd_w_block<T, KS, 5>(g, in, Cin, Lin, Lout, s, p, nv, gW, co);
    if (WIDE && KS > 3)  // (the first layer's 5 taps: 4 channels' 20 accumulators spilled)
        for (; co + 2 <= Cout; co += 2) bwd_w_block<T, KS, 2>(g, in, Cin, Lin, Lout, s, p, nv, gW, co);
    constexpr int CBW = bw_channels<KS>();
    for (; co + CBW <= Cout; co += CBW)
        bwd_w_block<T, KS, CBW>(g, in, Cin, Lin, Lout, s, p, nv, gW, co);
    for (; co < Cout; ++co) bwd_w_block<T, KS, 1>(g, in, Cin, Lin, Lout, s, p, nv, gW, co);
    // the biases' sums, 4 channels at a time (4 chains of additions, each in its own order)
    int c = 0;
    for (; c + 4 <= Cout; c += 4) {
        V acc[4] = {};
        const T* gc = g + (int64_t)c * Lout * row;
        const int64_t n = (int64_t)Lout * nv, stride = (int64_t)Lout * row;
        for (int64_t i = 0; i < n; ++i)
            for (int k = 0; k < 4; ++k) acc[k] += ld<V>(gc + k * stride + i * NL);
        for (int k = 0; k < 4; ++k) gb[c + k] = hsum<T>(acc[k]);
    }
    for (; c < Cout; ++c) {
        V acc = {};
        const T* gc = g + (int64_t)c * Lout * row;
        for (int64_t i = 0; i < (int64_t)Lout * nv; ++i) acc += ld<V>(gc + i * NL);
        gb[c] = hsum<T>(acc);
    }
}

// gin[ci][q][b] = sum_{co, j : s l + j - p = q} W[co][ci][j] g[co][l][b], times (a[ci][q][b] > 0)
// (the gradient before the previous layer's ReLU, whose output is a).
template <class T, int KS, int CB, int BV>
static void bwd_in_block(const T* g, const T* W, const T* a, int Cin, int Lin, int Cout,
                         int Lout, int s, int p, int nv, T* gin, int ci, int v0) {
    typedef typename Vec<T>::V V;
    const int NL = Vec<T>::N;
    const int64_t row = (int64_t)nv * NL;
    for (int q = 0; q < Lin; ++q) {
        V acc[CB][BV] = {};
        int js[KS], ls[KS], n = 0;
        for (int j = 0; j < KS; ++j) {
            int t = q + p - j;
            if (t < 0 || t % s) continue;
            int l = t / s;
            if (l >= Lout) continue;
            js[n] = j;
            ls[n] = l;
            ++n;
        }
        for (int co = 0; co < Cout; ++co) {
            const T* w = W + ((int64_t)co * Cin + ci) * KS;
            for (int t = 0; t < n; ++t) {
                const T* src = g + ((int64_t)co * Lout + ls[t]) * row + (int64_t)v0 * NL;
                V x[BV];
                for (int b = 0; b < BV; ++b) x[b] = ld<V>(src + b * NL);
                for (int c = 0; c < CB; ++c) {
                    const T wc = w[(int64_t)c * KS + js[t]];
                    for (int b = 0; b < BV; ++b) acc[c][b] += wc * x[b];
                }
            }
        }
        for (int c = 0; c < CB; ++c)
            for (int b = 0; b < BV; ++b) {
                const int64_t off = ((int64_t)(ci + c) * Lin + q) * row + (int64_t)(v0 + b) * NL;
                const V m = ld<V>(a + off);
                st(gin + off, m > 0 ? acc[c][b] : (V){});
            }
    }
}

// Every block of input channels over every block of vectors of examples.
template <class T, int KS>
static void conv_bwd_in(const T* g, const T* W, const T* a, int Cin, int Lin, int Cout,
                        int Lout, int s, int p, int nv, T* gin) {
    channel_blocks(Cin, [&](auto cb, int ci) {
        example_blocks(nv, [&](auto bv, int v) {
            bwd_in_block<T, KS, cb, bv>(g, W, a, Cin, Lin, Cout, Lout, s, p, nv, gin, ci, v);
        });
    });
}

struct Dims {
    int64_t B, L0, C, O, L1, L2, L3;
    int64_t k1, s1, p1, k2, s2, p2, k3, s3, p3;
};

// Workspace of one thread, grown as needed and kept.
template <class T> struct Work {
    T* buf = nullptr;
    int64_t size = 0;
    T* get(int64_t n) {
        if (n > size) {
            free(buf);
            void* p = nullptr;
            if (posix_memalign(&p, 64, (size_t)n * sizeof(T)) != 0) p = nullptr;
            buf = (T*)p;
            size = buf ? n : 0;
        }
        return buf;
    }
};

// Activations of one run for a batch of B examples (row = B rounded up to whole vectors).
template <class T> struct Acts {
    int nv;
    int64_t row;
    T *x0, *a1, *a2, *a3, *z;
};

static inline int64_t acts_size(const Dims& d, int64_t row) {
    return (d.L0 + d.C * (d.L1 + d.L2 + d.L3) + d.O) * row;
}

// The forward pass of examples x[0, B) (rows of L0 inputs) into the activations at w.
template <class T>
static Acts<T> forward(const Dims& d, const T* x, int64_t B, const T* const* prm, T* w) {
    const int NL = Vec<T>::N;
    Acts<T> a;
    a.nv = (int)((B + NL - 1) / NL);
    const int64_t row = a.row = (int64_t)a.nv * NL;
    const int C = (int)d.C, O = (int)d.O, F = (int)(d.C * d.L3);
    const int L0 = (int)d.L0, L1 = (int)d.L1, L2 = (int)d.L2, L3 = (int)d.L3;
    a.x0 = w;
    a.a1 = a.x0 + L0 * row;
    a.a2 = a.a1 + C * L1 * row;
    a.a3 = a.a2 + C * L2 * row;
    a.z = a.a3 + C * L3 * row;
    // input, transposed to [position][example] (padding examples are zeros)
    for (int l = 0; l < L0; ++l) {
        T* dst = a.x0 + (int64_t)l * row;
        for (int64_t b = 0; b < B; ++b) dst[b] = x[b * L0 + l];
        for (int64_t b = B; b < row; ++b) dst[b] = 0;
    }
    conv_fwd<T, 5>(a.x0, 1, L0, prm[0], prm[1], C, L1, (int)d.s1, (int)d.p1, a.a1, a.nv, true);
    conv_fwd<T, 3>(a.a1, C, L1, prm[2], prm[3], C, L2, (int)d.s2, (int)d.p2, a.a2, a.nv, true);
    conv_fwd<T, 3>(a.a2, C, L2, prm[4], prm[5], C, L3, (int)d.s3, (int)d.p3, a.a3, a.nv, true);
    conv_fwd<T, 1>(a.a3, F, 1, prm[6], prm[7], O, 1, 1, 0, a.z, a.nv, false);
    return a;
}

// log-sum-exp of example b's logits (max first, as torch's log_softmax)
template <class T> static inline T lse_of(const T* z, int O, int64_t row, int64_t b) {
    T m = z[b];
    for (int o = 1; o < O; ++o) m = z[o * row + b] > m ? z[o * row + b] : m;
    T sum = 0;
    for (int o = 0; o < O; ++o) sum += exp(z[o * row + b] - m);
    return m + log(sum);
}

// One run: loss and gradients. Returns 0, or -1 when the workspace cannot be allocated.
template <class T>
static int run_one(const Dims& d, const T* x, const int64_t* y, const T* const* prm,
                   T* const* grd, T* loss, double eps, Work<T>& work) {
    const int NL = Vec<T>::N;
    const int64_t row = (d.B + NL - 1) / NL * NL;
    const int64_t na = acts_size(d, row);
    T* w = work.get(2 * na);
    if (!w) return -1;
    const Acts<T> a = forward<T>(d, x, d.B, prm, w);
    const int nv = a.nv;
    const int C = (int)d.C, O = (int)d.O, F = (int)(d.C * d.L3);
    const int L0 = (int)d.L0, L1 = (int)d.L1, L2 = (int)d.L2, L3 = (int)d.L3;
    // gradients with respect to each layer's output, in the second half of the workspace
    T* g1 = w + na + L0 * row;
    T* g2 = g1 + C * L1 * row;
    T* g3 = g2 + C * L2 * row;
    T* gz = g3 + C * L3 * row;
    const T* z = a.z;
    // cross-entropy: loss_b = (1 - eps) (lse - z_y) + eps / O sum_o (lse - z_o);
    // d loss / d z_o = (softmax_o - (1 - eps) [o = y] - eps / O) / B
    T total = 0;
    const T invB = (T)1 / (T)d.B, keep = (T)(1.0 - eps), spread = (T)(eps / (double)O);
    for (int64_t b = 0; b < d.B; ++b) {
        const T lse = lse_of<T>(z, O, row, b);
        const int64_t yb = y[b];
        T lb = keep * (lse - z[yb * row + b]);
        if (eps != 0) {
            T sm = 0;
            for (int o = 0; o < O; ++o) sm += lse - z[o * row + b];
            lb += spread * sm;
        }
        total += lb;
        for (int o = 0; o < O; ++o) {
            T t = exp(z[o * row + b] - lse) - spread - (o == yb ? keep : (T)0);
            gz[o * row + b] = t * invB;
        }
    }
    for (int o = 0; o < O; ++o)
        for (int64_t b = d.B; b < row; ++b) gz[o * row + b] = 0;
    *loss = total * invB;
    // backward: read-out, then each convolution (weights, bias, and the input's gradient
    // through the ReLU below it)
    const int s1 = (int)d.s1, p1 = (int)d.p1, s2 = (int)d.s2, p2 = (int)d.p2;
    const int s3 = (int)d.s3, p3 = (int)d.p3;
    conv_bwd_w<T, 1>(gz, a.a3, F, 1, O, 1, 1, 0, nv, grd[6], grd[7]);
    conv_bwd_in<T, 1>(gz, prm[6], a.a3, F, 1, O, 1, 1, 0, nv, g3);
    conv_bwd_w<T, 3>(g3, a.a2, C, L2, C, L3, s3, p3, nv, grd[4], grd[5]);
    conv_bwd_in<T, 3>(g3, prm[4], a.a2, C, L2, C, L3, s3, p3, nv, g2);
    conv_bwd_w<T, 3>(g2, a.a1, C, L1, C, L2, s2, p2, nv, grd[2], grd[3]);
    conv_bwd_in<T, 3>(g2, prm[2], a.a1, C, L1, C, L2, s2, p2, nv, g1);
    conv_bwd_w<T, 5>(g1, a.x0, 1, L0, C, L1, s1, p1, nv, grd[0], grd[1]);
    return 0;
}

// One run's evaluation on n examples, in chunks of d.B: the sum of the cross-entropy losses
// (in double) and the number of examples whose largest logit (the first of equals; NaN counts
// as largest, as torch's argmax) is the target.
template <class T>
static int eval_one(const Dims& d, const T* x, int64_t n, const int64_t* y, const T* const* prm,
                    double* loss_sum, int64_t* correct, Work<T>& work) {
    const int NL = Vec<T>::N;
    const int64_t row = (d.B + NL - 1) / NL * NL;
    T* w = work.get(acts_size(d, row));
    if (!w) return -1;
    const int O = (int)d.O;
    double total = 0;
    int64_t right = 0;
    for (int64_t start = 0; start < n; start += d.B) {
        const int64_t B = n - start < d.B ? n - start : d.B;
        const Acts<T> a = forward<T>(d, x + start * d.L0, B, prm, w);
        for (int64_t b = 0; b < B; ++b) {
            const int64_t yb = y[start + b];
            total += (double)(lse_of<T>(a.z, O, a.row, b) - a.z[yb * a.row + b]);
            int best = 0;
            T top = a.z[b];
            for (int o = 1; o < O; ++o) {
                const T v = a.z[o * a.row + b];
                if (top != top) break;
                if (v != v || v > top) {
                    top = v;
                    best = o;
                }
            }
            right += best == yb;
        }
    }
    *loss_sum = total;
    *correct = right;
    return 0;
}

// The dimensions passed from Python (Dims, then K) and the number of elements of each of
// the 8 parameter arrays per run (run-major, (K, ...) contiguous).
static int64_t read_dims(const int64_t* dims, Dims& d, int64_t* sizes) {
    memcpy(&d, dims, sizeof d);
    const int64_t per_run[8] = {d.C * d.k1, d.C, d.C * d.C * d.k2, d.C, d.C * d.C * d.k3, d.C,
                                d.O * d.C * d.L3, d.O};
    memcpy(sizes, per_run, sizeof per_run);
    return dims[sizeof(Dims) / sizeof(int64_t)];
}

// Run k's slice of 8 stacked arrays.
template <class P> static inline void slices(P* const* arrays, const int64_t* sizes, int64_t k,
                                             P** out) {
    for (int i = 0; i < 8; ++i) out[i] = arrays[i] + k * sizes[i];
}

// The K runs of dims (Dims, then K) over threads: f(d, sizes, k, work) for each run k, with
// its thread's workspace; their failures or'd.
template <class T, class F> static int each_run(const int64_t* dims, int threads, F f) {
    Dims d;
    int64_t sizes[8];
    const int64_t K = read_dims(dims, d, sizes);
    int failed = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(| : failed)
    for (int64_t k = 0; k < K; ++k) {
        static thread_local Work<T> work;
        failed |= f(d, sizes, k, work);
    }
    return failed;
}

// K runs. Per-run strides: x_stride / y_stride elements between runs' batches (0: shared).
template <class T>
static int step(const int64_t* dims, const T* x, int64_t x_stride, const int64_t* y,
                int64_t y_stride, T* const* prm, T* const* grd, T* losses, double eps,
                int threads) {
    return each_run<T>(dims, threads, [&](const Dims& d, const int64_t* sizes, int64_t k,
                                          Work<T>& work) {
        T *p[8], *g[8];
        slices<T>(prm, sizes, k, p);
        slices<T>(grd, sizes, k, g);
        return run_one<T>(d, x + k * x_stride, y + k * y_stride, p, g, losses + k, eps, work);
    });
}

// K runs evaluated on the same n examples (chunks of dims' B).
template <class T>
static int evaluate(const int64_t* dims, const T* x, int64_t n, const int64_t* y,
                    T* const* prm, double* loss_sums, int64_t* correct, int threads) {
    return each_run<T>(dims, threads, [&](const Dims& d, const int64_t* sizes, int64_t k,
                                          Work<T>& work) {
        T* p[8];
        slices<T>(prm, sizes, k, p);
        return eval_one<T>(d, x, n, y, p, loss_sums + k, correct + k, work);
    });
}

extern "C" int dl_cnn_eval_f32(const int64_t* dims, const float* x, int64_t n, const int64_t* y,
                               float* const* prm, double* loss_sums, int64_t* correct,
                               int threads) {
    return evaluate<float>(dims, x, n, y, prm, loss_sums, correct, threads);
}

extern "C" int dl_cnn_eval_f64(const int64_t* dims, const double* x, int64_t n,
                               const int64_t* y, double* const* prm, double* loss_sums,
                               int64_t* correct, int threads) {
    return evaluate<double>(dims, x, n, y, prm, loss_sums, correct, threads);
}

extern "C" int dl_cnn_step_f32(const int64_t* dims, const float* x, int64_t xs, const int64_t* y,
                               int64_t ys, float* const* prm, float* const* grd, float* losses,
                               double eps, int threads) {
    return step<float>(dims, x, xs, y, ys, prm, grd, losses, eps, threads);
}

extern "C" int dl_cnn_step_f64(const int64_t* dims, const double* x, int64_t xs,
                               const int64_t* y, int64_t ys, double* const* prm,
                               double* const* grd, double* losses, double eps, int threads) {
    return step<double>(dims, x, xs, y, ys, prm, grd, losses, eps, threads);
}
