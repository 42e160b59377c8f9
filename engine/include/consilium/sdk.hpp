// consilium/sdk.hpp: the whole header-only C++ SDK. Plugins may include just the part they need:
// sdk/provider.hpp, sdk/transport.hpp or sdk/storage.hpp.
#pragma once

#include <consilium/sdk/core.hpp>
#include <consilium/sdk/options.hpp>
#include <consilium/sdk/provider.hpp>
#include <consilium/sdk/storage.hpp>
#include <consilium/sdk/transport.hpp>
