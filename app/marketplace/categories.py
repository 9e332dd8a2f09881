"""The fixed list of service categories, in the order people see them.

A category is stored by its slug (`services.category`); labels and colours live here only, so
renaming a label changes no data. The hue tints the generated placeholder picture."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    slug: str
    label: str
    hue: int  # 0-359, for the placeholder's gradient

    @property
    def initial(self) -> str:
        return self.label[0]


CATEGORIES: tuple[Category, ...] = (
    Category("cleaning", "Cleaning", 190),
    Category("tutoring", "Tutoring", 260),
    Category("repairs", "Home repairs", 28),
    Category("moving", "Moving", 210),
    Category("beauty", "Beauty & wellness", 330),
    Category("pets", "Pet care", 95),
    Category("events", "Events", 45),
    Category("tech", "Tech help", 170),
    Category("other", "Other", 230),
)

DEFAULT = "other"
_BY_SLUG = {category.slug: category for category in CATEGORIES}


def get(slug: str) -> Category | None:
    """The category with this slug; None for anything else (a stale link, a probe)."""
    return _BY_SLUG.get(slug)


def category(slug: str) -> Category:
    """The category of a stored service; a slug no longer listed reads as "Other"."""
    return _BY_SLUG.get(slug) or _BY_SLUG[DEFAULT]
