// A handler module for tests/mutants_peers3_workers_test.ts that ends its Worker's link to the
// parent as it loads: the Worker still starts and reports its server bound, but the name it
// serves on never reaches the parent, so the relay waits for it in vain.
import { linkParent } from "../mod.ts";

(await linkParent()).close();

export default (): string => "unreachable";
