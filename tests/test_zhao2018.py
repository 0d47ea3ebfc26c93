"""The seed-study profile: the paper's detectors, defences and attacks, sharing the defence zoo's
models (its seed 0's), with three training seeds."""

from __future__ import annotations

from bench.inputs.matrix import builtin_matrix_path, load_matrix
from bench.inputs.photos import builtin_source
from bench.run.plan import images_attack, make_plan, plan_models


def test_zhao2018_is_the_seed_study_and_shares_the_defence_zoo_cache() -> None:
    zhao = load_matrix(builtin_matrix_path("zhao2018"))
    zoo = load_matrix(builtin_matrix_path("defenses"))
    assert [t.name for t in zhao.tasks] == ["median5"]
    assert [d.name for d in zhao.detectors] == ["bayar", "srm"]
    assert [d.name for d in zhao.defenses] == ["none", "grad-penalty", "adv-train", "grad-penalty+adv-train"]
    assert dict(zhao.defenses[2].params)["attack"] == "fgsm"  # fused adversarial training with FGSM
    assert sorted(a.name for a in zhao.attacks) == ["art.fgsm", "art.pgd", "foolbox.fgsm", "foolbox.pgd"]
    assert len(zhao.epsilons_255) >= 4
    source = builtin_source()
    zoo_models = {j.key for j in plan_models(zoo, source)}
    assert zhao.training_seeds == (0, 1, 2) and zhao.seed == 0 and zoo.training_seeds == (0,)
    models = plan_models(zhao, source)
    assert len(models) == 3 * 8 and len({j.key for j in models}) == len(models)
    # seed 0's models are the zoo's, trained once for both profiles; seeds 1 and 2 are other models
    assert {j.key for j in models if j.training_seed == 0} <= zoo_models
    assert not {j.key for j in models if j.training_seed != 0} & zoo_models
    assert images_attack(zhao).name == "art.pgd"  # transfer and gallery come from ART PGD
    plan = make_plan(zhao, source, threads=1)
    pgd = {c.key for c in plan.cells if c.attack.name == "art.pgd" and c.model.training_seed == 0}
    assert pgd <= {c.key for c in make_plan(zoo, source, threads=1).cells}  # the same cells as the defence zoo's
