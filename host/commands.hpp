// The `consilium` subcommands (CONTRACT.md "The host"). Each returns the process exit code.
#pragma once

#include <string>
#include <vector>

namespace consilium::host {

int cmd_serve(const std::vector<std::string> &args);
int cmd_plugin(const std::vector<std::string> &args);
int cmd_persona(const std::vector<std::string> &args);
int cmd_route(const std::vector<std::string> &args);
int cmd_chat(const std::vector<std::string> &args);
int cmd_account(const std::vector<std::string> &args);
int cmd_plugin_check(const std::vector<std::string> &args);
int cmd_audit(const std::vector<std::string> &args);
int cmd_keys(const std::vector<std::string> &args);

}  // namespace consilium::host
