from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.CreateModel(
            name="Appointment",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("who", models.CharField(max_length=128)),
                ("what", models.CharField(max_length=200)),
                ("starts_at", models.DateTimeField()),
                ("reminder_id", models.BigIntegerField(blank=True, null=True)),
            ],
        )
    ]
