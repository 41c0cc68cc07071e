// make_backend: backends by name, so configs and tests can say "cpu" or "cuda".
#include <stdexcept>

#include "core/backend/backend.hpp"
#include "core/backend/cpu/cpu_backend.hpp"
#ifdef KWM_HAVE_CUDA
#include "core/backend/cuda/cuda_factory.hpp"
#endif

namespace kwm {

bool cuda_available() {
#ifdef KWM_HAVE_CUDA
  return cuda_device_present();
#else
  return false;
#endif
}

template <typename T>
std::unique_ptr<Backend<T>> make_backend(const std::string& name) {
  if (name == "cpu") return make_cpu_backend<T>();
  if (name == "cuda") {
#ifdef KWM_HAVE_CUDA
    if (!cuda_device_present())
      throw std::runtime_error("backend 'cuda': this build has CUDA but no GPU is visible");
    return make_cuda_backend<T>();
#else
    throw std::runtime_error(
        "backend 'cuda': this build has no CUDA support (configure with the 'cuda' preset)");
#endif
  }
  throw std::invalid_argument("backend must be 'cpu' or 'cuda'; got '" + name + "'");
}

template std::unique_ptr<Backend<float>> make_backend<float>(const std::string&);
template std::unique_ptr<Backend<double>> make_backend<double>(const std::string&);

}  // namespace kwm
