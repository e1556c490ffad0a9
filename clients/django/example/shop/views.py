"""Post/redirect/get: the write happens in one request, the read in the next.

Without read-your-writes the GET after the redirect can land on a standby
that has not replayed the INSERT yet and answer 404. The middleware carries
the primary's WAL position across the redirect in a signed cookie.
"""

from django.db.models import F
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt

from .models import Item


def item_list(request):
    items = Item.objects.filter(is_available=True).order_by("-date_created")[:50]
    return JsonResponse({"items": [item.as_dict() for item in items]})


@csrf_exempt
def item_create(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    item = Item.objects.create(
        name=request.POST.get("name", "unnamed"),
        count=int(request.POST.get("count", "0")),
        average=float(request.POST.get("average", "0")),
    )
    return redirect("item-detail", pk=item.pk)


def item_detail(request, pk):
    try:
        item = Item.objects.get(pk=pk)
    except Item.DoesNotExist:
        raise Http404("no item %d" % pk)
    # _state.db: the alias the router chose, to see read-your-writes at work.
    return JsonResponse(dict(item.as_dict(), db=item._state.db))


@csrf_exempt
def item_bump(request, pk):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    # An UPDATE with no save(): post_save never fires, the execute wrapper
    # still sees the write.
    Item.objects.filter(pk=pk).update(count=F("count") + 1)
    return redirect("item-detail", pk=pk)
