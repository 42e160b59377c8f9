// A shared object that is not a Consilium plugin: it has no entry point.
extern "C" int not_a_plugin(void) { return 42; }
