// SC_HD marks functions usable from both host code and CUDA device code.
#pragma once
#if defined(__CUDACC__)
#define SC_HD __host__ __device__ __forceinline__
#else
#define SC_HD inline
#endif
