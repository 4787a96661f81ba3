// Adafactor's update for a list of tensors in one call (descentlab.optim.adafactor_native).
//
// For each tensor: the factored (or, for a vector, whole) second moment updated in place and
// the update u = -alpha / max(1, RMS(g / sqrt(v)) / d) * g / sqrt(v) (- lr * wd * p) written,
// in three passes over the memory: (1) the row and column sums of g^2 and the sum of p^2,
// (2) the sum of the unscaled update's squares, (3) the scaled update (recomputed, not
// stored, between passes 2 and 3). The elementwise operations are torch.optim.Adafactor's, in
// its order and in the parameters' precision (v = (row_i * col_j) / mean(row), clamped to
// eps1^2, u = g * (1 / sqrt(v))); sums are accumulated in double precision (torch's norms in
// float32), so the results agree with torch's to float rounding, not bit for bit.
//
// Per tensor: meta = [kind (0: vector, 1: matrices), batches B, rows R, columns C] (a vector:
// 1, 1, N), ptrs = [p, g, row, col, variance, u], coef = [1 - beta2_t, rho_t, eps1, eps2, d,
// lr * weight_decay]. Tensors of at least 65536 elements spread their rows over `threads`
// OpenMP threads; smaller ones run on the calling thread.

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>
#include <omp.h>

namespace {

constexpr int64_t PARALLEL = 1 << 16;

template <typename T>
inline T lerp(T self, T end, T w) {
  // torch's CPU lerp: self + w * (end - self) for |w| < 0.5, else end - (end - self) * (1 - w)
  return std::abs(w) < T(0.5) ? self + w * (end - self) : end - (end - self) * (T(1) - w);
}

template <typename T>
inline T inv_root(T v, T floor) {
  v = v < floor ? floor : v;
  return T(1) / std::sqrt(v);
}

// f(a, b, t) over [0, n) in nt contiguous ranges, one per thread t (on this thread: nt <= 1);
// every loop body below is the same vectorized code whatever the threads
template <typename F>
void over(int64_t n, int nt, F f) {
  if (nt <= 1) {
    f(int64_t(0), n, 0);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), k = omp_get_num_threads();
    f(n * t / k, n * (t + 1) / k, t);
  }
}

inline double total(const std::vector<double>& xs) {
  double s = 0.0;
  for (double x : xs) s += x;
  return s;
}

// u = (g * (1 / sqrt(max(a * c / m, floor)))) * f (+ decay * p), over one row of C elements
// (c: the columns' statistics) or, with c null, over a vector (a * c / m read as v)
template <typename T>
void scaled(const T* __restrict p, const T* __restrict g, const T* __restrict v,
            const T* __restrict c, T* __restrict u, int64_t n, T a, T m, T floor, T f, T decay,
            bool decays) {
  if (c == nullptr) {
    if (decays) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) u[j] = (g[j] * inv_root<T>(v[j], floor)) * f + decay * p[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) u[j] = (g[j] * inv_root<T>(v[j], floor)) * f;
    }
  } else if (decays) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      u[j] = (g[j] * inv_root<T>((a * c[j]) / m, floor)) * f + decay * p[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) u[j] = (g[j] * inv_root<T>((a * c[j]) / m, floor)) * f;
  }
}

// the sum of (g * (1 / sqrt(max(a * c / m, floor))))^2 over one row of C elements
template <typename T>
double squares(const T* __restrict g, const T* __restrict c, int64_t n, T a, T m, T floor) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) {
    T x = g[j] * inv_root<T>((a * c[j]) / m, floor);
    s += double(x) * double(x);
  }
  return s;
}

// one row's sum of g^2 (returned), its squares added to cols, the sum of p^2 added to q
template <typename T>
double sums(const T* __restrict p, const T* __restrict g, double* __restrict cols, int64_t n,
            double& q) {
  double s = 0.0, r = 0.0;
#pragma omp simd reduction(+ : s, r)
  for (int64_t j = 0; j < n; ++j) {
    double x = double(g[j]) * double(g[j]);
    s += x;
    cols[j] += x;
    r += double(p[j]) * double(p[j]);
  }
  q += r;
  return s;
}

// -alpha / max(1, RMS(u) / d), alpha = max(eps2, RMS(p)) * rho: the update's factor, from the
// sums of p^2 and of the unscaled update's squares over the tensor's N elements
inline double step_factor(double psq, double usq, int64_t N, const double* k) {
  const double root_n = std::sqrt(double(N));
  const double alpha = std::fmax(k[3], std::sqrt(psq) / root_n) * k[1];
  return -alpha / std::fmax(1.0, std::sqrt(usq) / (root_n * k[4]));
}

template <typename T>
void matrices(const T* p, const T* g, T* row, T* col, T* u, int64_t B, int64_t R, int64_t C,
              const double* k, int threads) {
  const int64_t N = B * R * C, rows = B * R;
  const T w = T(k[0]), eps1 = T(k[2]), floor = T(k[2] * k[2]);
  const int nt = N >= PARALLEL ? threads : 1;
  // pass 1: row sums of g^2, column sums per thread, the sum of p^2
  std::vector<double> cols(static_cast<size_t>(nt) * B * C, 0.0), psq(nt, 0.0), usq(nt, 0.0);
  std::vector<T> rowsum(rows);
  over(rows, nt, [&](int64_t a, int64_t b, int t) {
    double* mine = cols.data() + static_cast<size_t>(t) * B * C;
    double q = 0.0;
    for (int64_t i = a; i < b; ++i)
      rowsum[i] = T(sums<T>(p + i * C, g + i * C, mine + (i / R) * C, C, q) / double(C));
    psq[t] = q;
  });
  for (int64_t i = 0; i < rows; ++i) row[i] = lerp(row[i], rowsum[i], w);
  for (int64_t j = 0; j < B * C; ++j) {
    double s = 0.0;
    for (int t = 0; t < nt; ++t) s += cols[static_cast<size_t>(t) * B * C + j];
    col[j] = lerp(col[j], T(s / double(R)), w);
  }
  std::vector<T> mean(B);
  for (int64_t b = 0; b < B; ++b) {
    double s = 0.0;
    for (int64_t i = 0; i < R; ++i) s += double(row[b * R + i]);
    T m = T(s / double(R));
    mean[b] = m < eps1 ? eps1 : m;
  }
  // pass 2: the sum of the unscaled update's squares
  over(rows, nt, [&](int64_t a, int64_t b, int t) {
    double s = 0.0;
    for (int64_t i = a; i < b; ++i)
      s += squares<T>(g + i * C, col + (i / R) * C, C, row[i], mean[i / R], floor);
    usq[t] = s;
  });
  const T f = T(step_factor(total(psq), total(usq), N, k)), decay = T(-k[5]);
  const bool decays = k[5] != 0.0;
  // pass 3: the scaled update (and the decoupled weight decay's term)
  over(rows, nt, [&](int64_t a, int64_t b, int) {
    for (int64_t i = a; i < b; ++i)
      scaled<T>(p + i * C, g + i * C, nullptr, col + (i / R) * C, u + i * C, C, row[i],
                mean[i / R], floor, f, decay, decays);
  });
}

// a vector's v lerped towards g^2; the sums of p^2 and of (g / sqrt(max(v, floor)))^2
template <typename T>
void moments(const T* __restrict p, const T* __restrict g, T* __restrict v, int64_t n, T w,
             T floor, double& psq, double& usq) {
  double q = 0.0, s = 0.0;
#pragma omp simd reduction(+ : q, s)
  for (int64_t j = 0; j < n; ++j) {
    T vj = lerp(v[j], g[j] * g[j], w);
    v[j] = vj;
    T x = g[j] * inv_root<T>(vj, floor);
    q += double(p[j]) * double(p[j]);
    s += double(x) * double(x);
  }
  psq = q;
  usq = s;
}

template <typename T>
void vector(const T* p, const T* g, T* v, T* u, int64_t N, const double* k, int threads) {
  const T w = T(k[0]), floor = T(k[2] * k[2]);
  const int nt = N >= PARALLEL ? threads : 1;
  std::vector<double> psq(nt, 0.0), usq(nt, 0.0);
  // pass 1: v's lerp towards g^2, the sums of p^2 and of the unscaled update's squares
  over(N, nt, [&](int64_t a, int64_t b, int t) {
    moments<T>(p + a, g + a, v + a, b - a, w, floor, psq[t], usq[t]);
  });
  const T f = T(step_factor(total(psq), total(usq), N, k)), decay = T(-k[5]);
  const bool decays = k[5] != 0.0;
  over(N, nt, [&](int64_t a, int64_t b, int) {
    scaled<T>(p + a, g + a, v + a, nullptr, u + a, b - a, T(0), T(1), floor, f, decay, decays);
  });
}

template <typename T>
void step(int64_t n, const int64_t* meta, const int64_t* ptrs, const double* coef, int threads) {
  for (int64_t t = 0; t < n; ++t) {
    const int64_t* m = meta + 4 * t;
    const int64_t* q = ptrs + 6 * t;
    const T* p = reinterpret_cast<const T*>(q[0]);
    const T* g = reinterpret_cast<const T*>(q[1]);
    T* u = reinterpret_cast<T*>(q[5]);
    if (m[0] == 1)
      matrices<T>(p, g, reinterpret_cast<T*>(q[2]), reinterpret_cast<T*>(q[3]), u, m[1], m[2],
                  m[3], coef + 6 * t, threads);
    else
      vector<T>(p, g, reinterpret_cast<T*>(q[4]), u, m[3], coef + 6 * t, threads);
  }
}

}  // namespace

extern "C" void adafactor_step_f32(int64_t n, const int64_t* meta, const int64_t* ptrs,
                                 const double* coef, int threads) {
  step<float>(n, meta, ptrs, coef, threads);
}

extern "C" void adafactor_step_f64(int64_t n, const int64_t* meta, const int64_t* ptrs,
                                 const double* coef, int threads) {
  step<double>(n, meta, ptrs, coef, threads);
}
