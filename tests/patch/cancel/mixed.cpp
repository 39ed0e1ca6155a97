// A C++ frame between two C frames of cancel.c's "mixed" mode: its destructor runs between
// the C cleanup handlers of the frames below and above it, as the unwind passes it.
extern "C" void cancel_note(const char* what);
namespace {
struct Middle {
  ~Middle() { cancel_note("destructor of the C++ frame in the middle\n"); }
};
}  // namespace
extern "C" void cancel_cxx_middle(void (*inner)(void)) {
  Middle m;
  inner();
}
