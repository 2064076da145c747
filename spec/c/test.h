/*
 * test.h - the C unit tests' few macros: each test is a function, a failed
 * check prints where and why, and main() runs the list and returns nonzero
 * if anything failed.
 */
#ifndef LC_TEST_H
#define LC_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
      test_failures++;                                                         \
    }                                                                          \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                     \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (a_ != b_) {                                                            \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,      \
              __LINE__, #a, #b, a_, b_);                                       \
      test_failures++;                                                         \
    }                                                                          \
  } while (0)

#define CHECK_EQ_STR(a, b)                                                     \
  do {                                                                         \
    const char *a_ = (a), *b_ = (b);                                           \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                     \
      fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,  \
              __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");       \
      test_failures++;                                                         \
    }                                                                          \
  } while (0)

#define RUN(test)                                                              \
  do {                                                                         \
    int before_ = test_failures;                                               \
    test();                                                                    \
    fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL",     \
            #test);                                                            \
  } while (0)

#define TEST_EXIT() return test_failures ? 1 : 0

#endif
