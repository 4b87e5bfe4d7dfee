/* Standalone JIT of BRGEMM specializations (ORC LLJIT on the host).
 *
 * For tests and benchmarks only; codegen puts bodies into its own modules.
 * A session owns one LLJIT, one thread-safe context, a host TargetMachine
 * (for the light pass pipeline and for assembly dumps) and a hash table from
 * mangled names to compiled addresses, so every specialization is compiled
 * once.  brg_jit_get_many() emits all missing descriptors into a single
 * module and compiles it in one go, which keeps test suites that need
 * thousands of specializations fast.  In the JIT the bodies get external
 * linkage so they can be looked up by name; brg_emit() itself always makes
 * them private.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "brg_private.h"

/* The pass pipeline run on every JIT module before code generation. */
#define BRG_JIT_PASSES "function(instcombine<no-verify-fixpoint>,simplifycfg)"

typedef struct jit_entry {
  char *name;
  brg_fn fn;
} jit_entry;

struct brg_jit {
  LLVMOrcLLJITRef lljit;
  LLVMOrcThreadSafeContextRef tsc;
  LLVMTargetMachineRef tm;
  jit_entry *tab; /* open addressing, size a power of 2 */
  size_t cap, used;
  char err[512];
};

/* FNV-1a hash of "s". */
static size_t hash_str(const char *s)
{
  size_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The slot of "name" in "jit"'s table: its entry or the empty slot for it. */
static jit_entry *tab_slot(const brg_jit *jit, const char *name)
{
  size_t i = hash_str(name) & (jit->cap - 1);
  while (jit->tab[i].name && strcmp(jit->tab[i].name, name))
    i = (i + 1) & (jit->cap - 1);
  return &jit->tab[i];
}

/* Record "fn" under "name"; grow the table when it is half full. */
static void tab_put(brg_jit *jit, const char *name, brg_fn fn)
{
  if (2 * (jit->used + 1) > jit->cap) {
    jit_entry *old = jit->tab;
    size_t oldcap = jit->cap;
    jit->cap = oldcap ? 2 * oldcap : 256;
    jit->tab = calloc(jit->cap, sizeof *jit->tab);
    for (size_t i = 0; i < oldcap; i++)
      if (old[i].name)
        *tab_slot(jit, old[i].name) = old[i];
    free(old);
  }
  jit_entry *e = tab_slot(jit, name);
  e->name = strdup(name);
  e->fn = fn;
  jit->used++;
}

/* Store the message of "e" (consumed) in "jit"; return -1. */
static int set_error(brg_jit *jit, LLVMErrorRef e, const char *what)
{
  char *msg = e ? LLVMGetErrorMessage(e) : NULL;
  snprintf(jit->err, sizeof jit->err, "%s%s%s", what, msg ? ": " : "", msg ? msg : "");
  if (msg)
    LLVMDisposeErrorMessage(msg);
  return -1;
}

/* A TargetMachine for the host CPU and its features, or NULL. */
static LLVMTargetMachineRef host_tm(void)
{
  char *triple = LLVMGetDefaultTargetTriple(), *cpu = LLVMGetHostCPUName();
  char *feat = LLVMGetHostCPUFeatures(), *msg = NULL;
  LLVMTargetRef target;
  LLVMTargetMachineRef tm = NULL;
  if (!LLVMGetTargetFromTriple(triple, &target, &msg))
    tm = LLVMCreateTargetMachine(target, triple, cpu, feat, LLVMCodeGenLevelDefault,
                                 LLVMRelocPIC, LLVMCodeModelJITDefault);
  LLVMDisposeMessage(msg);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
  return tm;
}

/* LLVM's target registry is a process-wide list that its initialisers change without a
 * lock: two threads registering at once (two contexts compiling for the first time) could
 * link a target to itself and loop forever in the lookup. So it is done once. */
static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;

static void llvm_init(void)
{
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
}

void brg_llvm_init(void)
{
  pthread_once(&llvm_once, llvm_init);
}

brg_jit *brg_jit_new(void)
{
  brg_llvm_init();
  brg_jit *jit = calloc(1, sizeof *jit);
  if (!jit)
    return NULL;
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&jit->lljit, builder);
  if (e) {
    LLVMConsumeError(e);
    free(jit);
    return NULL;
  }
  jit->tsc = LLVMOrcCreateNewThreadSafeContext();
  jit->tm = host_tm();
  if (!jit->tm) {
    brg_jit_free(jit);
    return NULL;
  }
  return jit;
}

void brg_jit_free(brg_jit *jit)
{
  if (!jit)
    return;
  if (jit->lljit)
    LLVMConsumeError(LLVMOrcDisposeLLJIT(jit->lljit));
  if (jit->tsc)
    LLVMOrcDisposeThreadSafeContext(jit->tsc);
  if (jit->tm)
    LLVMDisposeTargetMachine(jit->tm);
  for (size_t i = 0; i < jit->cap; i++)
    free(jit->tab[i].name);
  free(jit->tab);
  free(jit);
}

const char *brg_jit_error(const brg_jit *jit)
{
  return jit ? jit->err : "no JIT";
}

/* A new module in "jit"'s context with the host's data layout and triple. */
static LLVMModuleRef new_module(brg_jit *jit)
{
  LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(jit->tsc);
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("brg_jit", ctx);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(jit->tm);
  LLVMSetModuleDataLayout(mod, dl);
  LLVMDisposeTargetData(dl);
  char *triple = LLVMGetTargetMachineTriple(jit->tm);
  LLVMSetTarget(mod, triple);
  LLVMDisposeMessage(triple);
  return mod;
}

/* Run the light pipeline over "mod"; returns 0 or -1. */
static int run_passes(brg_jit *jit, LLVMModuleRef mod)
{
  LLVMPassBuilderOptionsRef opt = LLVMCreatePassBuilderOptions();
  LLVMErrorRef e = LLVMRunPasses(mod, BRG_JIT_PASSES, jit->tm, opt);
  LLVMDisposePassBuilderOptions(opt);
  return e ? set_error(jit, e, "pass pipeline") : 0;
}

/* Emit the "n" descriptors "d" that are not compiled yet into "mod" with
 * external linkage; returns the number emitted, or -1 for an invalid one. */
static long emit_missing(brg_jit *jit, LLVMModuleRef mod, const brg_desc *d, size_t n)
{
  long count = 0;
  char name[512];
  for (size_t i = 0; i < n; i++) {
    const char *why = brg_desc_validate(&d[i]);
    if (why) {
      snprintf(jit->err, sizeof jit->err, "invalid descriptor %zu: %s", i, why);
      return -1;
    }
    brg_desc_name(&d[i], name, sizeof name);
    if ((jit->cap && tab_slot(jit, name)->name) || LLVMGetNamedFunction(mod, name))
      continue;
    LLVMSetLinkage(brg_emit(mod, &d[i]), LLVMExternalLinkage);
    count++;
  }
  return count;
}

/* Look up the entry points of "d" after compiling "mod" (consumed; NULL
 * when every one is cached already). */
static int compile_and_lookup(brg_jit *jit, LLVMModuleRef mod, const brg_desc *d, size_t n,
                              brg_fn *out)
{
  LLVMErrorRef e;
  if (mod) {
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, jit->tsc);
    LLVMOrcJITDylibRef lib = LLVMOrcLLJITGetMainJITDylib(jit->lljit);
    e = LLVMOrcLLJITAddLLVMIRModule(jit->lljit, lib, tsm);
    if (e)
      return set_error(jit, e, "adding module");
  }
  char name[512];
  for (size_t i = 0; i < n; i++) {
    brg_desc_name(&d[i], name, sizeof name);
    jit_entry *slot = jit->cap ? tab_slot(jit, name) : NULL;
    if (!slot || !slot->name) {
      LLVMOrcExecutorAddress addr = 0;
      e = LLVMOrcLLJITLookup(jit->lljit, &addr, name);
      if (e)
        return set_error(jit, e, "lookup");
      tab_put(jit, name, (brg_fn)(uintptr_t)addr);
      slot = tab_slot(jit, name);
    }
    out[i] = slot->fn;
  }
  return 0;
}

int brg_jit_get_many(brg_jit *jit, const brg_desc *d, size_t n, brg_fn *out)
{
  LLVMModuleRef mod = new_module(jit);
  long count = emit_missing(jit, mod, d, n);
  if (count < 0 || (count > 0 && run_passes(jit, mod))) {
    LLVMDisposeModule(mod);
    return -1;
  }
  if (count == 0) {
    LLVMDisposeModule(mod);
    mod = NULL;
  }
  return compile_and_lookup(jit, mod, d, n, out);
}

brg_fn brg_jit_get(brg_jit *jit, const brg_desc *d)
{
  brg_fn fn = NULL;
  return brg_jit_get_many(jit, d, 1, &fn) ? NULL : fn;
}

int brg_jit_dump_asm(brg_jit *jit, const brg_desc *d, const char *path)
{
  LLVMModuleRef mod = new_module(jit);
  LLVMValueRef fn = brg_emit(mod, d);
  if (!fn) {
    LLVMDisposeModule(mod);
    snprintf(jit->err, sizeof jit->err, "invalid descriptor: %s", brg_desc_validate(d));
    return -1;
  }
  LLVMSetLinkage(fn, LLVMExternalLinkage);
  char *msg = NULL;
  int rc = run_passes(jit, mod);
  if (!rc && LLVMTargetMachineEmitToFile(jit->tm, mod, path, LLVMAssemblyFile, &msg)) {
    snprintf(jit->err, sizeof jit->err, "emitting %s: %s", path, msg ? msg : "");
    rc = -1;
  }
  LLVMDisposeMessage(msg);
  LLVMDisposeModule(mod);
  return rc;
}
