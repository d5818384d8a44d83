// Affine coupling for kernels/coupling/cuda.py, written for `real` (float or double).
// forward: out = x * exp(s) + t (reverse: (x - t) * exp(-s)), scale = the exp it used, and
// the log-determinant's partial sums of s, accumulated in double whatever `real` is.
// backward: the three gradients in one elementwise pass.

__device__ __forceinline__ float exp_real(float v) { return expf(v); }
__device__ __forceinline__ double exp_real(double v) { return exp(v); }

// The sum of every thread's v, returned in thread 0; blockDim.x is a multiple of 32 and at
// most 1024. Each warp shuffles its values down to lane 0, then the first warp adds the
// warps' sums: the order is fixed, so a sample's log-determinant is the same on every run,
// which atomics would not give.
__device__ double block_sum(double v)
{
    __shared__ double warp_sums[32];
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, offset);
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    if (lane == 0)
        warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x >> 5) ? warp_sums[lane] : 0.0;
        for (int offset = 16; offset > 0; offset >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, offset);
    }
    return v;
}

// x, s, t, out, scale: (N, d) rows, one per sample. Block (sample, part) of a grid
// (N, parts) takes entries part * blockDim.x + threadIdx.x, stepping by parts * blockDim.x,
// so a warp reads consecutive entries; it writes its share of the sample's sum of s
// (negated for reverse) to partial[sample * parts + part].
extern "C" __global__ void coupling_forward(const real* x, const real* s, const real* t,
                                            real* out, real* scale, double* partial, int d,
                                            int reverse)
{
    const long long row = (long long)blockIdx.x * d;
    const long long step = (long long)gridDim.y * blockDim.x;
    double sum = 0.0;
    for (long long i = (long long)blockIdx.y * blockDim.x + threadIdx.x; i < d; i += step) {
        const long long k = row + i;
        const real si = s[k];
        sum += (double)si;
        if (reverse) {
            const real e = exp_real(-si);
            scale[k] = e;
            out[k] = (x[k] - t[k]) * e;
        } else {
            const real e = exp_real(si);
            scale[k] = e;
            out[k] = x[k] * e + t[k];
        }
    }
    sum = block_sum(sum);
    if (threadIdx.x == 0)
        partial[(long long)blockIdx.x * gridDim.y + blockIdx.y] = reverse ? -sum : sum;
}

// One thread an entry of the (N, d) rows; g_logdet (N,) is the log-determinant's gradient,
// already in `real`. grad_x, grad_s, grad_t go to the three parts of the stacked result.
extern "C" __global__ void coupling_backward(const real* x, const real* scale,
                                             const real* t, const real* g,
                                             const real* g_logdet,
                                             real* grad_x, real* grad_s, real* grad_t,
                                             int size, int d, int reverse)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= size)
        return;
    const real dx = g[i] * scale[i];
    const real gl = g_logdet[(int)i / d];  // size fits an int: a 32-bit division
    grad_x[i] = dx;
    if (reverse) {
        grad_s[i] = -dx * (x[i] - t[i]) - gl;
        grad_t[i] = -dx;
    } else {
        grad_s[i] = dx * x[i] + gl;
        grad_t[i] = g[i];
    }
}
