"""Template tags for the jobs admin."""

from django import template
from django.contrib.admin.templatetags.base import InclusionAdminNode

from jobs.admin.date_hierarchy import cheap_date_hierarchy

register = template.Library()


@register.tag(name="jobs_date_hierarchy")
def jobs_date_hierarchy_tag(parser, token):
    """``{% jobs_date_hierarchy cl %}``: the admin's date drill-down, cheap on big tables."""
    return InclusionAdminNode(
        parser, token, func=cheap_date_hierarchy, template_name="date_hierarchy.html", takes_context=False
    )
