// The CUDA backend's entry points, called by core/backend/backend_registry.cpp when the build
// has CUDA (KWM_HAVE_CUDA). Nothing here needs CUDA headers.
#pragma once

#include <memory>

#include "core/backend/backend.hpp"

namespace kwm {

// A backend on the current CUDA device with its own stream, cuBLAS and cuSOLVER handles.
// Instantiated for float and double. Throws std::runtime_error when no device is visible.
template <typename T>
std::unique_ptr<Backend<T>> make_cuda_backend();

// True when the CUDA runtime sees at least one device (never throws).
bool cuda_device_present();

}  // namespace kwm
