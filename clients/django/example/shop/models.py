from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)
    count = models.IntegerField(default=0)
    is_available = models.BooleanField(default=True)
    average = models.FloatField(default=0.0)
    date_created = models.DateTimeField(auto_now_add=True)

    def as_dict(self):
        return {
            "id": self.pk,
            "name": self.name,
            "count": self.count,
            "is_available": self.is_available,
            "average": self.average,
            "date_created": self.date_created.isoformat(),
        }
