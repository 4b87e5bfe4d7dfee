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

static void choose_isa(cg_target *t) {
  bool x86 = strncmp(t->triple, "x86_64", 6) == 0;
  bool avx512 = strstr(t->features, "+avx512f") || strcmp(t->cpu, "x86-64-v4") == 0;
  bool avx2 = (strstr(t->features, "+avx2") && strstr(t->features, "+fma")) ||
              strcmp(t->cpu, "x86-64-v3") == 0;
  t->isa = x86 && avx512 ? BRG_ISA_AVX512 : x86 && (avx2 || avx512) ? BRG_ISA_AVX2 : BRG_ISA_GENERIC;
  t->vlen = 4;
}

int cg_target_init(cg_target *t, const char *spec, char **err) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
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
    t->features = xstrdup("");
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
