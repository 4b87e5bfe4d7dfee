/*
 * Targets: "native" (the host's triple, CPU and features), "x86-64-v3" (AVX2), "x86-64-v4"
 * (AVX-512), or "TRIPLE[:CPU]". The BRGEMM ISA follows from the target's features: AVX-512
 * when avx512f is there, AVX2 with avx2 and fma, otherwise generic vectors of 4 floats.
 */
#include "codegen.h"

#include <llvm-c/Target.h>
#include <stdlib.h>
#include <string.h>

static char *xstrdup(const char *s) {
  char *p = strdup(s ? s : "");
  if (!p)
    abort();
  return p;
}

static char *msg(const char *fmt, const char *arg) {
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  bk_strbuf_printf(&sb, fmt, arg);
  return bk_strbuf_take(&sb);
}

static bool in_list(const char *s, const char *const *list) {
  for (; *list; list++)
    if (strcmp(s, *list) == 0)
      return true;
  return false;
}

/* The BRGEMM ISA: from the host's features, or for a named CPU ("TRIPLE:CPU") from what LLVM
 * 19's model of it has (llc-19 -march=x86-64 -mcpu=NAME -mattr=help). */
static void choose_isa(cg_target *t) {
  static const char *const avx512_cpus[] = {
      "x86-64-v4", "knl", "knm", "mic_avx512", "skylake-avx512", "skylake_avx512", "skx",
      "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake_client",
      "icelake-server", "icelake_server", "tigerlake", "rocketlake", "sapphirerapids",
      "emeraldrapids", "graniterapids", "graniterapids-d", "graniterapids_d", "znver4", "znver5",
      NULL};
  static const char *const avx2_cpus[] = {
      "x86-64-v3", "haswell", "core-avx2", "core_4th_gen_avx", "core_4th_gen_avx_tsx",
      "broadwell", "core_5th_gen_avx", "core_5th_gen_avx_tsx", "skylake", "alderlake",
      "raptorlake", "meteorlake", "arrowlake", "arrowlake-s", "arrowlake_s", "lunarlake",
      "pantherlake", "gracemont", "sierraforest", "grandridge", "clearwaterforest", "znver1",
      "znver2", "znver3", "bdver4", NULL};
  bool x86 = cg_triple_is_x86_64(t->triple);
  bool avx512 = strstr(t->features, "+avx512f") || in_list(t->cpu, avx512_cpus);
  bool avx2 = (strstr(t->features, "+avx2") && strstr(t->features, "+fma")) ||
              in_list(t->cpu, avx2_cpus);
  t->isa = x86 && avx512 ? BRG_ISA_AVX512 : x86 && (avx2 || avx512) ? BRG_ISA_AVX2 : BRG_ISA_GENERIC;
  t->vlen = 4;
}

/* Is "cpu" a processor LLVM 19 knows for x86 (llc -march=x86-64 -mcpu=help)? An unknown one
 * is not an error to LLVM: it warns on stderr and builds for no features at all, and then
 * aborts the process on a 64-bit triple. */
static bool known_x86_cpu(const char *cpu) {
  static const char *const cpus[] = {
      "alderlake", "amdfam10", "arrowlake", "arrowlake-s", "arrowlake_s", "athlon",
      "athlon-4", "athlon-fx", "athlon-mp", "athlon-tbird", "athlon-xp", "athlon64",
      "athlon64-sse3", "atom", "atom_sse4_2", "atom_sse4_2_movbe", "barcelona", "bdver1",
      "bdver2", "bdver3", "bdver4", "bonnell", "broadwell", "btver1", "btver2", "c3",
      "c3-2", "cannonlake", "cascadelake", "clearwaterforest", "cooperlake", "core-avx-i",
      "core-avx2", "core2", "core_2_duo_sse4_1", "core_2_duo_ssse3", "core_2nd_gen_avx",
      "core_3rd_gen_avx", "core_4th_gen_avx", "core_4th_gen_avx_tsx", "core_5th_gen_avx",
      "core_5th_gen_avx_tsx", "core_aes_pclmulqdq", "core_i7_sse4_2", "corei7",
      "corei7-avx", "emeraldrapids", "generic", "geode", "goldmont", "goldmont-plus",
      "goldmont_plus", "gracemont", "grandridge", "graniterapids", "graniterapids-d",
      "graniterapids_d", "haswell", "i386", "i486", "i586", "i686", "icelake-client",
      "icelake-server", "icelake_client", "icelake_server", "ivybridge", "k6", "k6-2",
      "k6-3", "k8", "k8-sse3", "knl", "knm", "lakemont", "lunarlake", "meteorlake",
      "mic_avx512", "nehalem", "nocona", "opteron", "opteron-sse3", "pantherlake", "penryn",
      "pentium", "pentium-m", "pentium-mmx", "pentium2", "pentium3", "pentium3m",
      "pentium4", "pentium4m", "pentium_4", "pentium_4_sse3", "pentium_ii", "pentium_iii",
      "pentium_iii_no_xmm_regs", "pentium_m", "pentium_mmx", "pentium_pro", "pentiumpro",
      "prescott", "raptorlake", "rocketlake", "sandybridge", "sapphirerapids",
      "sierraforest", "silvermont", "skx", "skylake", "skylake-avx512", "skylake_avx512",
      "slm", "tigerlake", "tremont", "westmere", "winchip-c6", "winchip2", "x86-64",
      "x86-64-v2", "x86-64-v3", "x86-64-v4", "yonah", "znver1", "znver2", "znver3",
      "znver4", "znver5"
  };
  for (size_t i = 0; i < sizeof cpus / sizeof cpus[0]; i++)
    if (strcmp(cpu, cpus[i]) == 0)
      return true;
  return false;
}

bool cg_triple_is_x86_64(const char *triple) {
  size_t n = strcspn(triple, "-");
  return (n == 6 && strncmp(triple, "x86_64", 6) == 0) ||
         (n == 7 && strncmp(triple, "x86_64h", 7) == 0) || (n == 5 && strncmp(triple, "amd64", 5) == 0);
}

int cg_target_init(cg_target *t, const char *spec, char **err) {
  brg_llvm_init();
  *t = (cg_target){0};
  char *def = LLVMGetDefaultTargetTriple();
  if (!spec || strcmp(spec, "native") == 0) {
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    t->triple = xstrdup(def);
    t->cpu = xstrdup(cpu);
    t->features = xstrdup(feat);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
  } else if (strcmp(spec, "x86-64-v3") == 0 || strcmp(spec, "x86-64-v4") == 0) {
    t->triple = xstrdup(strncmp(def, "x86_64", 6) == 0 ? def : "x86_64-pc-linux-gnu");
    t->cpu = xstrdup(spec);
    t->features = xstrdup("");
  } else {
    const char *colon = strchr(spec, ':');
    t->triple = colon ? strndup(spec, (size_t)(colon - spec)) : xstrdup(spec);
    t->cpu = xstrdup(colon ? colon + 1 : "generic");
    bool x86_64 = cg_triple_is_x86_64(t->triple);
    /* a 32-bit CPU on a 64-bit triple would abort in LLVM too: 64-bit mode is the triple's */
    t->features = xstrdup(x86_64 ? "+64bit" : "");
    bool x86 = x86_64 || (t->triple[0] == 'i' && t->triple[1] && strchr("3456", t->triple[1]) &&
                          strncmp(t->triple + 2, "86", 2) == 0);
    if (x86 && !known_x86_cpu(t->cpu)) {
      *err = msg("unknown CPU in target '%s' (llc-19 -march=x86-64 -mcpu=help lists them)", spec);
      LLVMDisposeMessage(def);
      cg_target_release(t);
      return -1;
    }
  }
  LLVMDisposeMessage(def);
  LLVMTargetRef target;
  char *lerr = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &target, &lerr)) {
    *err = msg("unknown target '%s'", spec);
    LLVMDisposeMessage(lerr);
    cg_target_release(t);
    return -1;
  }
  choose_isa(t);
  return 0;
}

void cg_target_release(cg_target *t) {
  free(t->triple);
  free(t->cpu);
  free(t->features);
  *t = (cg_target){0};
}

LLVMTargetMachineRef cg_target_machine(const cg_target *t, char **err) {
  LLVMTargetRef target;
  char *lerr = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &target, &lerr)) {
    *err = msg("unknown target triple '%s'", t->triple);
    LLVMDisposeMessage(lerr);
    return NULL;
  }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, t->triple, t->cpu, t->features,
                                                    LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                                    LLVMCodeModelDefault);
  if (!tm)
    *err = msg("cannot create a target machine for '%s'", t->triple);
  return tm;
}
