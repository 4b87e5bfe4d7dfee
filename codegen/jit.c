/*
 * The JIT: ORC's LLJIT for the host. Symbols the kernels call outside their module (libgomp's
 * GOMP_parallel, malloc, free, libm) resolve against the running process.
 */
#include "codegen.h"

#include <llvm-c/Error.h>
#include <stdlib.h>

struct cg_jit {
  LLVMOrcLLJITRef jit;
};

static char *error_string(LLVMErrorRef e) {
  char *m = LLVMGetErrorMessage(e);
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  bk_strbuf_printf(&sb, "JIT: %s", m);
  LLVMDisposeErrorMessage(m);
  return bk_strbuf_take(&sb);
}

cg_jit *cg_jit_new(char **err) {
  cg_jit *j = calloc(1, sizeof(*j));
  if (!j)
    abort();
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, builder);
  if (e) {
    *err = error_string(e);
    free(j);
    return NULL;
  }
  LLVMOrcDefinitionGeneratorRef gen;
  e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit),
                                                           NULL, NULL);
  if (e) {
    *err = error_string(e);
    cg_jit_free(j);
    return NULL;
  }
  LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
  return j;
}

void cg_jit_free(cg_jit *j) {
  if (!j)
    return;
  if (j->jit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
    if (e)
      LLVMConsumeError(e);
  }
  free(j);
}

int cg_jit_add(cg_jit *j, cg_module *m, char **err) {
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m->mod, m->tsc);
  m->mod = NULL; /* owned by tsm now */
  LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
  cg_module_free(m);
  if (e) {
    *err = error_string(e);
    return -1;
  }
  return 0;
}

void *cg_jit_lookup(cg_jit *j, const char *name, char **err) {
  LLVMOrcExecutorAddress addr = 0;
  LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, name);
  if (e) {
    *err = error_string(e);
    return NULL;
  }
  return (void *)(uintptr_t)addr;
}
