// RINGLET_PATCH's syntax, shared by the patch library and the ringlet-run launcher.
#include <string>

#include "ringlet/patch.hpp"

namespace ringlet::patch {

bool parse_groups(const std::string& spec, unsigned& groups, std::string& error) {
  static const std::pair<const char*, unsigned> names[] = {
      {"all", All}, {"time", Time}, {"socket", Socket}, {"select", Select}, {"dns", Dns}, {"thread", Thread}, {"process", Process}, {"none", 0}};
  unsigned g = All;
  bool first = true;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    std::size_t end = spec.find(',', pos);
    if (end == std::string::npos) end = spec.size();
    std::string item = spec.substr(pos, end - pos);
    pos = end + 1;
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty()) {
      if (end == spec.size()) break;
      continue;
    }
    const bool minus = item[0] == '-';
    const bool plus = item[0] == '+';
    if (minus || plus) item.erase(0, 1);
    unsigned bits = ~0u;
    for (auto [n, b] : names)
      if (item == n) bits = b;
    if (bits == ~0u) {
      error = "unknown group '" + item + "' (groups: all, none, time, socket, select, dns, thread, process; '-name' leaves one out)";
      return false;
    }
    if (minus) g &= ~bits;
    else if (plus || !first) g |= bits;
    else g = bits;  // a leading plain name replaces the default "all"
    if (item == "none") g = 0;
    first = false;
  }
  groups = g;
  return true;
}

}  // namespace ringlet::patch
