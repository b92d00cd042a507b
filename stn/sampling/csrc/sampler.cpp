// Fused separable grid sampling with any kernel, optionally stretched (anti-aliased):
// forward and backward of stn.sampling's general path in one pass per sample, with no
// per-tap tensors. Plain C ABI (called through ctypes) and no torch headers, so it
// compiles in about a second. stn/native.py builds and calls it; stn/sampling.py's torch
// path is the reference it is tested against.
//
// Layout: input (N, C, H, W) contiguous; x, y, sx, sy (N, S) sample positions in input
// pixels and kernel stretches (sx, sy may be null: no stretch); out (N, C, S).
// Per axis, sample at position p with stretch s has window taps m = start + t,
// t = 0..T-1, start = floor(p - radius·s) + 1, weights k((p - m) / s), divided by their
// sum over the whole window when `normalize` (before padding: "zeros" then drops outside
// taps, "border" reads the edge pixel for them). A NaN or infinite position or stretch
// gives NaN, as the torch path does.

#include <pthread.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

enum Kind : int32_t { NEAREST = 0, BOX = 1, TENT = 2, KEYS = 3, LANCZOS = 4, GAUSSIAN = 5 };

constexpr double kPi = 3.14159265358979323846;
// Window starts are clamped to ±2^62 so that they convert to int64_t exactly.
constexpr double kFarTap = 4611686018427387904.0;
// Below this |u| the Lanczos derivative's closed form cancels to noise (three terms of
// ~πu summing to ~u³); its first Taylor term is exact there to ~1e-12 (as stn/kernels.py).
constexpr double kLanczosTaylor = 1e-4;

struct Spec {
  int32_t kind;
  int32_t normalize;  // divide by the window's sum
  int32_t zeros;      // padding: 1 zeros, 0 border
  int32_t tx, ty;     // taps per axis
  int32_t threads;
  double radius;      // unstretched support half-width
  double p0, p1;      // Keys: a | Lanczos: lobes | Gaussian: sigma, edge value
};

template <typename R>
inline R sign(R v) {
  return static_cast<R>((v > 0) - (v < 0));
}

template <typename R>
inline R lanczos_slope_near_zero(R u, R n) {
  return -static_cast<R>(kPi * kPi / 3) * (1 + 1 / (n * n)) * u;
}

// k(u) and, with D, k'(u) (one-sided conventions as stn/kernels.py's deriv).
template <typename R, int K, bool D>
inline R kernel_at(const Spec& k, R u, R* slope) {
  const R x = std::fabs(u);
  if constexpr (K == NEAREST) {
    if (D) *slope = 0;
    return x <= R(0.5) ? R(1) : R(0);
  } else if constexpr (K == BOX) {
    if (D) *slope = 0;
    return (u >= R(-0.5) && u < R(0.5)) ? R(1) : R(0);
  } else if constexpr (K == TENT) {
    if (D) *slope = x < 1 ? -sign(u) : R(0);
    return x < 1 ? 1 - x : R(0);
  } else if constexpr (K == KEYS) {
    const R a = static_cast<R>(k.p0);
    if (x <= 1) {
      if (D) *slope = (3 * (a + 2) * x - 2 * (a + 3)) * x * sign(u);
      return ((a + 2) * x - (a + 3)) * x * x + 1;
    }
    if (x < 2) {
      if (D) *slope = ((3 * a * x - 10 * a) * x + 8 * a) * sign(u);
      return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    }
    if (D) *slope = 0;
    return 0;
  } else if constexpr (K == LANCZOS) {
    const R n = static_cast<R>(k.p0);
    if (x >= n || u == 0) {
      if (D) *slope = 0;
      return x >= n ? R(0) : R(1);
    }
    const R pu = static_cast<R>(kPi) * u;
    const R s1 = std::sin(pu), s2 = std::sin(pu / n);
    const R value = n * s1 * s2 / (pu * pu);
    if (D) {
      *slope = x < R(kLanczosTaylor)
                   ? lanczos_slope_near_zero(u, n)
                   : static_cast<R>(kPi) *
                         (n * std::cos(pu) * s2 + s1 * std::cos(pu / n) - 2 * value * pu) /
                         (pu * pu);
    }
    return value;
  } else {  // GAUSSIAN
    const R sigma = static_cast<R>(k.p0), edge = static_cast<R>(k.p1);
    if (x >= static_cast<R>(k.radius)) {
      if (D) *slope = 0;
      return 0;
    }
    const R g = std::exp(R(-0.5) * (u / sigma) * (u / sigma));
    if (D) *slope = -u / (sigma * sigma) * g / (1 - edge);
    return (g - edge) / (1 - edge);
  }
}

// One axis of one sample: window start, weights w[t] and, with D, their derivatives with
// respect to the position (dp[t]) and the stretch (ds[t], stretched only).
// `lanczos_cs` holds cos, sin of πj/n for j = -T..T (unstretched Lanczos only).
template <typename R, int K, bool D>
inline int64_t axis_weights(const Spec& k, const R* lanczos_cs, R p, const R* stretch, int T,
                            R* w, R* dp, R* ds) {
  const R s = stretch ? *stretch : R(1);
  if (!std::isfinite(p) || !std::isfinite(s)) {
    // No window to speak of: NaN out, as the torch path, whose window of a NaN position
    // lands (after _fit_window) at 0 with a NaN first weight and zero others. A diverged
    // transform then shows as NaN rather than as a plausible zero image.
    const R nan = std::numeric_limits<R>::quiet_NaN();
    const bool flat = K == NEAREST || K == BOX;  // weights constant in p: zero slope
    for (int t = 0; t < T; ++t) {
      w[t] = t == 0 ? nan : R(0);
      if (D) {
        dp[t] = flat ? R(0) : nan;
        ds[t] = flat ? R(0) : nan;
      }
    }
    return 0;
  }
  const R start = std::floor(p - static_cast<R>(k.radius) * s) + 1;
  const R e0 = p - start;  // u of tap 0 (before stretching)
  if (K == LANCZOS && !stretch) {
    // u_t = r + j_t with r = e0 - round(e0) in [-1/2, 1/2] and j_t an integer, so
    // sin(πu) = (-1)^j sin(πr) and sin(πu/n) follows by angle addition: one sine and
    // cosine per sample (of θ = πr/n; sin(πr) = Im (cos θ + i sin θ)^n) instead of two
    // per tap. Reducing to r keeps the tap nearest the sample at full relative precision.
    const R n = static_cast<R>(k.p0);
    const int lobes = static_cast<int>(k.p0);
    const R centre = std::nearbyint(e0);
    const R r = e0 - centre;
    const R theta = static_cast<R>(kPi) * r / n;
    const R sn = std::sin(theta), cn = std::cos(theta);
    R cr = 1, sr = 0;  // (cos + i sin)(πr) by n complex products
    for (int i = 0; i < lobes; ++i) {
      const R c2 = cr * cn - sr * sn;
      sr = sr * cn + cr * sn;
      cr = c2;
    }
    const int c0 = static_cast<int>(centre);
    for (int t = 0; t < T; ++t) {
      const int j = c0 - t;
      const R u = r + j;
      if (std::fabs(u) >= n) {
        w[t] = 0;
        if (D) dp[t] = 0;
        continue;
      }
      if (j == 0 && r == 0) {
        w[t] = 1;
        if (D) dp[t] = 0;
        continue;
      }
      const R parity = (j % 2 == 0) ? R(1) : R(-1);
      const R cj = lanczos_cs[2 * (j + T)], sj = lanczos_cs[2 * (j + T) + 1];
      const R s1 = parity * sr, s2 = sn * cj + cn * sj;
      const R pu = static_cast<R>(kPi) * u;
      const R inv = 1 / (pu * pu);  // one division per tap, shared by value and slope
      const R value = n * s1 * s2 * inv;
      w[t] = value;
      if (D) {
        const R c1 = parity * cr, c2 = cn * cj - sn * sj;
        dp[t] = std::fabs(u) < R(kLanczosTaylor)
                    ? lanczos_slope_near_zero(u, n)
                    : static_cast<R>(kPi) * (n * c1 * s2 + s1 * c2 - 2 * value * pu) * inv;
      }
    }
  } else if (!stretch) {
    for (int t = 0; t < T; ++t) {
      const R u = e0 - t;
      R slope = 0;
      w[t] = kernel_at<R, K, D>(k, u, &slope);
      if (D) {
        // The torch path differentiates the polynomial piece of the window that holds
        // the sample (u in [-1, 1)): at a pixel centre the tent's slope is one-sided.
        if (K == TENT && u >= -1 && u < 1) slope = u >= 0 ? R(-1) : R(1);
        dp[t] = slope;
      }
    }
  } else {
    const R inv_s = 1 / s;
    for (int t = 0; t < T; ++t) {
      const R u = (e0 - t) * inv_s;
      R slope = 0;
      w[t] = kernel_at<R, K, D>(k, u, &slope);
      if (D) {
        dp[t] = slope * inv_s;      // d k(u) / dp
        ds[t] = -slope * u * inv_s;  // d k(u) / ds
      }
    }
  }
  if (k.normalize) {
    R total = 0, total_dp = 0, total_ds = 0;
    for (int t = 0; t < T; ++t) total += w[t];
    const R inv = 1 / total;
    for (int t = 0; t < T; ++t) w[t] *= inv;
    if (D) {
      // d(w_t / Σw) = (dw_t - w_t/Σw · dΣw) / Σw
      for (int t = 0; t < T; ++t) total_dp += dp[t];
      for (int t = 0; t < T; ++t) dp[t] = (dp[t] - w[t] * total_dp) * inv;
      if (stretch) {
        for (int t = 0; t < T; ++t) total_ds += ds[t];
        for (int t = 0; t < T; ++t) ds[t] = (ds[t] - w[t] * total_ds) * inv;
      }
    }
  }
  // Clamped so that the cast is defined (it is not beyond int64's range); a window that
  // far out reads padding either way.
  const R far = static_cast<R>(kFarTap);
  return static_cast<int64_t>(std::clamp(start, -far, far));
}

// For a window not wholly inside: pixel index of each tap (outside: 0 under "zeros",
// with its weight set to 0; the edge pixel under "border").
template <typename R>
inline void fit_taps(bool zeros, int64_t start, int T, int64_t size, int64_t* idx, R* w) {
  for (int t = 0; t < T; ++t) {
    const int64_t m = start + t;
    if (m >= 0 && m < size) {
      idx[t] = m;
    } else if (zeros) {
      idx[t] = 0;
      w[t] = 0;
    } else {
      idx[t] = m < 0 ? 0 : size - 1;
    }
  }
}

template <typename T>
struct Problem {
  const T* input;
  int64_t N, C, H, W, S;
  const T *x, *y, *sx, *sy;
  const Spec* spec;
  T* out;  // forward
  const T* grad_out;  // backward
  T *grad_input, *grad_x, *grad_y, *grad_sx, *grad_sy;
};

template <typename T, int K, bool Backward>
void run_images(const Problem<T>& P, int64_t n_begin, int64_t n_end) {
  const Spec& k = *P.spec;
  const int tx = k.tx, ty = k.ty;
  // Lanczos only: cos, sin of πj/n for j = -T..T, interleaved.
  const auto angle_table = [&k](int taps) {
    std::vector<T> cs;
    for (int j = -taps; K == LANCZOS && j <= taps; ++j) {
      cs.push_back(static_cast<T>(std::cos(kPi * j / k.p0)));
      cs.push_back(static_cast<T>(std::sin(kPi * j / k.p0)));
    }
    return cs;
  };
  const std::vector<T> cs_x = angle_table(tx), cs_y = angle_table(ty);
  std::vector<T> buf(4 * tx + 4 * ty);
  T *wx = buf.data(), *dpx = wx + tx, *dsx = dpx + tx, *gx = dsx + tx;
  T *wy = gx + tx, *dpy = wy + ty, *dsy = dpy + ty, *gy = dsy + ty;
  std::vector<int64_t> ix(tx), iy(ty);
  const int64_t plane = P.H * P.W;
  for (int64_t n = n_begin; n < n_end; ++n) {
    const T* img = P.input + n * P.C * plane;
    for (int64_t s = 0; s < P.S; ++s) {
      const int64_t at = n * P.S + s;
      const int64_t x0 = axis_weights<T, K, Backward>(
          k, cs_x.data(), P.x[at], P.sx ? P.sx + at : nullptr, tx, wx, dpx, dsx);
      const int64_t y0 = axis_weights<T, K, Backward>(
          k, cs_y.data(), P.y[at], P.sy ? P.sy + at : nullptr, ty, wy, dpy, dsy);
      const bool inside = x0 >= 0 && x0 + tx <= P.W && y0 >= 0 && y0 + ty <= P.H;
      if (!inside) {
        fit_taps(k.zeros, x0, tx, P.W, ix.data(), wx);
        fit_taps(k.zeros, y0, ty, P.H, iy.data(), wy);
      }
      if constexpr (!Backward) {
        for (int64_t c = 0; c < P.C; ++c) {
          const T* src = img + c * plane;
          T acc = 0;
          if (inside) {
            const T* row = src + y0 * P.W + x0;
            for (int a = 0; a < ty; ++a, row += P.W) {
              T along = 0;
              for (int b = 0; b < tx; ++b) along += wx[b] * row[b];
              acc += wy[a] * along;
            }
          } else {
            for (int a = 0; a < ty; ++a) {
              const T* row = src + iy[a] * P.W;
              T along = 0;
              for (int b = 0; b < tx; ++b) along += wx[b] * row[ix[b]];
              acc += wy[a] * along;
            }
          }
          P.out[(n * P.C + c) * P.S + s] = acc;
        }
      } else {
        // gx[t] = ∂L/∂wx_t and gy[t] = ∂L/∂wy_t, accumulated with the input's gradient.
        std::fill(gx, gx + tx, T(0));
        std::fill(gy, gy + ty, T(0));
        for (int64_t c = 0; c < P.C; ++c) {
          const T g = P.grad_out[(n * P.C + c) * P.S + s];
          if (g == 0) continue;
          const T* src = img + c * plane;
          T* dst = P.grad_input ? P.grad_input + (n * P.C + c) * plane : nullptr;
          for (int a = 0; a < ty; ++a) {
            const T gwa = g * wy[a];
            T along = 0;
            if (inside) {
              const int64_t off = (y0 + a) * P.W + x0;
              const T* row = src + off;
              for (int b = 0; b < tx; ++b) {
                along += wx[b] * row[b];
                gx[b] += gwa * row[b];
              }
              if (dst) {
                T* drow = dst + off;
                for (int b = 0; b < tx; ++b) drow[b] += gwa * wx[b];
              }
            } else {
              const T* row = src + iy[a] * P.W;
              for (int b = 0; b < tx; ++b) {
                along += wx[b] * row[ix[b]];
                gx[b] += gwa * row[ix[b]];
              }
              if (dst) {
                T* drow = dst + iy[a] * P.W;
                for (int b = 0; b < tx; ++b) drow[ix[b]] += gwa * wx[b];
              }
            }
            gy[a] += g * along;
          }
        }
        // A zero-padded tap was dropped after normalising: no gradient through its own
        // weight (its g is not a real read), but it stays in the others' sum.
        T dxp = 0, dxs = 0, dyp = 0, dys = 0;
        for (int t = 0; t < tx; ++t) {
          if (k.zeros && (x0 + t < 0 || x0 + t >= P.W)) continue;
          dxp += gx[t] * dpx[t];
          if (P.sx) dxs += gx[t] * dsx[t];
        }
        for (int t = 0; t < ty; ++t) {
          if (k.zeros && (y0 + t < 0 || y0 + t >= P.H)) continue;
          dyp += gy[t] * dpy[t];
          if (P.sy) dys += gy[t] * dsy[t];
        }
        if (P.grad_x) P.grad_x[at] = dxp;
        if (P.grad_y) P.grad_y[at] = dyp;
        if (P.grad_sx) P.grad_sx[at] = dxs;
        if (P.grad_sy) P.grad_sy[at] = dys;
      }
    }
  }
}

template <typename T, bool Backward>
void run_kind(const Problem<T>& P, int64_t begin, int64_t end) {
  switch (P.spec->kind) {
    case NEAREST: return run_images<T, NEAREST, Backward>(P, begin, end);
    case BOX: return run_images<T, BOX, Backward>(P, begin, end);
    case TENT: return run_images<T, TENT, Backward>(P, begin, end);
    case KEYS: return run_images<T, KEYS, Backward>(P, begin, end);
    case LANCZOS: return run_images<T, LANCZOS, Backward>(P, begin, end);
    case GAUSSIAN: return run_images<T, GAUSSIAN, Backward>(P, begin, end);
    default: return;
  }
}

template <typename T, bool Backward>
struct Job {
  const Problem<T>* P;
  int64_t begin, end;
};

template <typename T, bool Backward>
void* job_main(void* arg) {
  auto* job = static_cast<Job<T, Backward>*>(arg);
  run_kind<T, Backward>(*job->P, job->begin, job->end);
  return nullptr;
}

// Images split across threads: each owns its images' gradient planes, so no atomics.
template <typename T, bool Backward>
void run(const Problem<T>& P) {
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(P.spec->threads, P.N));
  std::vector<Job<T, Backward>> jobs(threads);
  std::vector<pthread_t> ids(threads);
  std::vector<char> started(threads, 0);
  for (int64_t i = 0; i < threads; ++i) {
    jobs[i] = {&P, P.N * i / threads, P.N * (i + 1) / threads};
    started[i] = i > 0 && pthread_create(&ids[i], nullptr, job_main<T, Backward>, &jobs[i]) == 0;
  }
  job_main<T, Backward>(&jobs[0]);
  for (int64_t i = 1; i < threads; ++i) {
    if (started[i]) {
      pthread_join(ids[i], nullptr);
    } else {
      job_main<T, Backward>(&jobs[i]);  // no thread to be had: do its share here
    }
  }
}

template <typename T>
void forward(const T* input, int64_t N, int64_t C, int64_t H, int64_t W, int64_t S, const T* x,
             const T* y, const T* sx, const T* sy, const Spec* spec, T* out) {
  Problem<T> P{input, N, C, H, W, S, x, y, sx, sy, spec, out,
               nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  run<T, false>(P);
}

template <typename T>
void backward(const T* input, int64_t N, int64_t C, int64_t H, int64_t W, int64_t S,
              const T* x, const T* y, const T* sx, const T* sy, const Spec* spec,
              const T* grad_out, T* grad_input, T* grad_x, T* grad_y, T* grad_sx, T* grad_sy) {
  Problem<T> P{input, N, C, H, W, S, x, y, sx, sy, spec, nullptr,
               grad_out, grad_input, grad_x, grad_y, grad_sx, grad_sy};
  run<T, true>(P);
}

}  // namespace

extern "C" {

int stn_sampler_abi_version() { return 1; }

void stn_sample_forward_f32(const float* input, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t S, const float* x, const float* y, const float* sx,
                            const float* sy, const Spec* spec, float* out) {
  forward(input, N, C, H, W, S, x, y, sx, sy, spec, out);
}

void stn_sample_forward_f64(const double* input, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t S, const double* x, const double* y, const double* sx,
                            const double* sy, const Spec* spec, double* out) {
  forward(input, N, C, H, W, S, x, y, sx, sy, spec, out);
}

void stn_sample_backward_f32(const float* input, int64_t N, int64_t C, int64_t H, int64_t W,
                             int64_t S, const float* x, const float* y, const float* sx,
                             const float* sy, const Spec* spec, const float* grad_out,
                             float* grad_input, float* grad_x, float* grad_y, float* grad_sx,
                             float* grad_sy) {
  backward(input, N, C, H, W, S, x, y, sx, sy, spec, grad_out, grad_input, grad_x, grad_y,
           grad_sx, grad_sy);
}

void stn_sample_backward_f64(const double* input, int64_t N, int64_t C, int64_t H, int64_t W,
                             int64_t S, const double* x, const double* y, const double* sx,
                             const double* sy, const Spec* spec, const double* grad_out,
                             double* grad_input, double* grad_x, double* grad_y,
                             double* grad_sx, double* grad_sy) {
  backward(input, N, C, H, W, S, x, y, sx, sy, spec, grad_out, grad_input, grad_x, grad_y,
           grad_sx, grad_sy);
}

}  // extern "C"
